//! Loading the client's private key, decrypting it with the configured passphrase reference.

use std::sync::Arc;

use russh::keys::PrivateKey;

use crate::Error;
use crate::ssh::SshTarget;

/// Reads and (if needed) decrypts `target.identity`.
///
/// The passphrase is resolved from its [`fspbx_ha_secret::SecretRef`] only when the key turns
/// out to be encrypted, is used once, and is dropped (zeroed) right after. Decryption (bcrypt
/// KDF) runs on a blocking thread.
pub(crate) async fn load_identity(target: &SshTarget) -> Result<Arc<PrivateKey>, Error> {
    let path = target.identity.clone();
    let text = tokio::fs::read_to_string(&path)
        .await
        .map_err(|source| Error::SshKeyRead {
            node: target.node.clone(),
            path: path.clone(),
            source,
        })?;
    let invalid = |e: russh::keys::Error| Error::SshKeyInvalid {
        node: target.node.clone(),
        path: path.clone(),
        reason: e.to_string(),
    };
    match russh::keys::decode_secret_key(&text, None) {
        Ok(key) => Ok(Arc::new(key)),
        Err(russh::keys::Error::KeyIsEncrypted) => {
            let Some(reference) = &target.passphrase else {
                return Err(Error::SshKeyEncrypted {
                    node: target.node.clone(),
                    path,
                });
            };
            let secret = reference
                .resolve()
                .map_err(|source| Error::SshPassphraseSecret {
                    node: target.node.clone(),
                    source,
                })?;
            tracing::debug!(node = %target.node, key = %path.display(), passphrase = %reference,
                "decrypting SSH key");
            let decoded = tokio::task::spawn_blocking(move || {
                russh::keys::decode_secret_key(&text, Some(secret.expose()))
            })
            .await;
            match decoded {
                Ok(Ok(key)) => Ok(Arc::new(key)),
                // The key decoded without a passphrase up to the encryption, so a failure now
                // means the passphrase did not fit.
                Ok(Err(_)) => Err(Error::SshKeyPassphrase {
                    node: target.node.clone(),
                    path,
                    reference: reference.to_string(),
                }),
                Err(join) => Err(Error::SshKeyInvalid {
                    node: target.node.clone(),
                    path,
                    reason: format!("decryption did not complete: {join}"),
                }),
            }
        }
        Err(e) => Err(invalid(e)),
    }
}
