-- The vault: secret values encrypted with XChaCha20-Poly1305, outside the event log.
-- Values are sealed with the secret's name and version as associated data, so a row
-- copied onto another name or an older version does not open.
CREATE TABLE secrets (
    name        TEXT PRIMARY KEY NOT NULL,
    version     INTEGER NOT NULL,
    nonce       BLOB NOT NULL,      -- 24 random bytes, fresh for every write
    ciphertext  BLOB NOT NULL,      -- value + 16-byte Poly1305 tag
    updated_ms  INTEGER NOT NULL
) STRICT;

-- `key_check`: a keyed blake3 hash that tells whether a master key is this vault's key
-- without decrypting anything and without revealing the key.
CREATE TABLE vault_meta (
    key    TEXT PRIMARY KEY NOT NULL,
    value  BLOB NOT NULL
) STRICT;
