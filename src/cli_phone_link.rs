//! `clawos channels pair NAME`: link a WhatsApp channel to a phone, showing WhatsApp's QR
//! codes in the terminal (or its pairing code) until the phone scans one.

use anyhow::{bail, Context, Result};
use clawos_channels::whatsapp_web::pair::{pair as link, Prompt};
use clawos_channels::whatsapp_web::settings::WhatsappWebSettings;
use clawos_kernel::config::settings_as;
use clawos_replay::Home;

/// The QR code of `text` as terminal text: two rows of modules per line, dark on light,
/// with the quiet zone scanners need.
pub fn qr_text(text: &str) -> Result<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).context("cannot make a QR code")?;
    Ok(code
        .render::<qrcode::render::unicode::Dense1x2>()
        .dark_color(qrcode::render::unicode::Dense1x2::Light)
        .light_color(qrcode::render::unicode::Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

fn show(prompt: Prompt) {
    match prompt {
        Prompt::Qr { code, valid_for } => match qr_text(&code) {
            Ok(qr) => println!(
                "\n{qr}\nOn the phone: WhatsApp → Settings → Linked devices → Link a device, \
                 and scan this code (valid {}s; a new one follows).",
                valid_for.as_secs()
            ),
            Err(e) => eprintln!("{e:#}"),
        },
        Prompt::Code { code, valid_for } => println!(
            "\nOn the phone: WhatsApp → Settings → Linked devices → Link a device → \
             Link with phone number instead, and type: {code} (valid {}s)",
            valid_for.as_secs()
        ),
    }
}

/// Pair the WhatsApp channel `name` of `home`'s configuration.
pub async fn pair(home: &Home, name: &str) -> Result<()> {
    let config = crate::cli_gateway::load_config(home)?;
    let Some(c) = config.channels.get(name) else {
        bail!("clawos.toml has no channel named {name}");
    };
    if c.kind != "whatsapp-web" {
        bail!(
            "channel {name} is a {} channel; only a `whatsapp-web` channel pairs with a phone",
            c.kind
        );
    }
    let settings: WhatsappWebSettings =
        settings_as(&c.settings).map_err(|e| anyhow::anyhow!("[channels.{name}]: {e}"))?;
    let dir = home.dir().join("channels").join(name);
    println!("connecting to WhatsApp at {} ...", settings.url());
    let number = link(&dir, &settings, show).await?;
    println!(
        "linked to +{number}; the session is in {} (keep it private). \
         The channel connects at its next retry or the Gateway's next start.",
        dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_qr_code_renders_as_terminal_text() {
        let qr = super::qr_text("2@abc,def,ghi,jkl,1").expect("a QR code");
        let lines: Vec<&str> = qr.lines().collect();
        assert!(lines.len() > 10, "{qr}");
        assert!(lines
            .iter()
            .all(|l| l.chars().count() == lines[0].chars().count()));
        assert!(qr.contains('█') || qr.contains('▀') || qr.contains('▄'));
    }
}
