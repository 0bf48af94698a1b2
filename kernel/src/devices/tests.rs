//! The proof checks against a vector made with OpenClaw's own client functions (seed of
//! 32 bytes of 7, platform `Linux`, no device family).

use super::*;

const KEY: &str = "6kpsY-KcUgq-9VB7Ey7F-ZVHdq6-vnuSQh7qaRRG0iw";
const DEVICE: &str = "fe812c12f3ab4ce6ac5db69ac352f906cb1b11ef43fb33e252ef7ff552263889";
const NONCE: &str = "3f1c1f0e-1111-4222-8333-444455556666";
const AT: i64 = 1_737_264_000_000;
const SIG_V3: &str =
    "P5Ak8KuRPwHESLNeKNhtE1rplyQlW0Kgw6XWmZ1pBwPcUQfbEqrh5Fx0RZbVYaw1PO7ezvGhxFBuxI1T1zPcCA";
const SIG_V2: &str =
    "NNuobsohlW-6fvPj6CTnnpQxzyj3nYd8260Vs_PJ0sYT3rJb-SxwiL88EwqAsfsXTbi6R6BxDScHQKjgAyF0Ag";

fn scopes() -> Vec<String> {
    vec!["operator.read".into(), "operator.write".into()]
}

fn fields(scopes: &[String]) -> SignedFields<'_> {
    SignedFields {
        device_id: DEVICE,
        client_id: "cli",
        client_mode: "cli",
        role: "operator",
        scopes,
        signed_at_ms: AT,
        token: "secret-token",
        nonce: NONCE,
        platform: "Linux",
        device_family: "",
    }
}

#[test]
fn the_device_id_is_the_sha256_of_the_key_and_payloads_match_openclaw() {
    let raw = public_key(KEY).unwrap();
    assert_eq!(device_id_of(&raw), DEVICE);
    assert_eq!(public_key_wire(&raw), KEY);
    let s = scopes();
    assert_eq!(
        payload_v3(&fields(&s)),
        format!("v3|{DEVICE}|cli|cli|operator|operator.read,operator.write|{AT}|secret-token|{NONCE}|linux|")
    );
}

#[test]
fn v3_and_v2_signatures_verify_and_anything_else_is_refused() {
    let s = scopes();
    let f = fields(&s);
    assert!(verify(&f, KEY, SIG_V3, NONCE, AT + 1000).is_ok());
    assert!(verify(&f, KEY, SIG_V2, NONCE, AT - 1000).is_ok());
    // Stale, a replayed nonce, another token, another scope order, another device id.
    assert_eq!(
        verify(&f, KEY, SIG_V3, NONCE, AT + SIGNATURE_SKEW_MS + 1),
        Err(ProofError::Stale)
    );
    assert_eq!(
        verify(&f, KEY, SIG_V3, "another-nonce", AT),
        Err(ProofError::NonceMismatch)
    );
    let other = SignedFields {
        token: "other",
        ..fields(&s)
    };
    assert_eq!(
        verify(&other, KEY, SIG_V3, NONCE, AT),
        Err(ProofError::Signature)
    );
    let reordered = vec!["operator.write".to_string(), "operator.read".to_string()];
    assert_eq!(
        verify(&fields(&reordered), KEY, SIG_V3, NONCE, AT),
        Err(ProofError::Signature)
    );
    let wrong_id = SignedFields {
        device_id: "00",
        ..fields(&s)
    };
    assert_eq!(
        verify(&wrong_id, KEY, SIG_V3, NONCE, AT),
        Err(ProofError::DeviceId)
    );
    assert_eq!(
        verify(&f, "short", SIG_V3, NONCE, AT),
        Err(ProofError::PublicKey)
    );
    let no_nonce = SignedFields {
        nonce: " ",
        ..fields(&s)
    };
    assert_eq!(
        verify(&no_nonce, KEY, SIG_V3, NONCE, AT),
        Err(ProofError::NonceMissing)
    );
}

#[test]
fn tokens_depend_on_device_role_generation_and_secret() {
    let mint = TokenMint::new("admin-secret");
    let t = mint.token(DEVICE, "operator", 1);
    assert!(mint.opens(&t, DEVICE, "operator", 1));
    assert!(!mint.opens(&t, DEVICE, "operator", 2));
    assert!(!mint.opens(&t, DEVICE, "node", 1));
    assert!(!mint.opens(&t, "another", "operator", 1));
    assert!(!TokenMint::new("rotated").opens(&t, DEVICE, "operator", 1));
    assert_eq!(t.len(), 43);
}
