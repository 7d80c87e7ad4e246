//! Every key name of the revocation store, built once from the prefix (see the table in
//! the module above).

use super::Kind;

/// Every key name, built once from the prefix.
pub(super) struct Keys {
    pub(super) jti: String,
    pub(super) fam: String,
    pub(super) sub: String,
    /// Spent refresh tokens as earlier versions kept them: no longer written, only drained.
    pub(super) spent: String,
    pub(super) channel: String,
    /// The data-loss marker (see `epoch.rs`).
    pub(super) epoch: String,
    pub(super) prefix: String,
}

impl Keys {
    /// On a cluster the prefix becomes a hash tag, `{portcullis:}`, so that every key here
    /// is in one slot: the claim script reads the revoked families with a family's record,
    /// and the resync reads every set in one pipeline.
    pub(super) fn new(prefix: &str, cluster: bool) -> Keys {
        let prefix = match cluster {
            true => format!("{{{prefix}}}"),
            false => prefix.to_owned(),
        };
        Keys {
            jti: format!("{prefix}revoked:jti"),
            fam: format!("{prefix}revoked:fam"),
            sub: format!("{prefix}revoked:sub"),
            spent: format!("{prefix}spent"),
            channel: format!("{prefix}events"),
            epoch: format!("{prefix}epoch"),
            prefix,
        }
    }

    pub(super) fn set(&self, kind: Kind) -> &str {
        match kind {
            Kind::Jti => &self.jti,
            Kind::Fam => &self.fam,
            Kind::Sub => &self.sub,
        }
    }

    /// The hash holding a family's rotation record.
    pub(super) fn family_record(&self, fam: &str) -> String {
        format!("{}family:{fam}", self.prefix)
    }
}
