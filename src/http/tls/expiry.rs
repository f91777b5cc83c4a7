//! When the served certificate expires: exported as the gauge
//! `tls_certificate_expiry_timestamp_seconds` (an alert fires a week ahead), and logged as an
//! error at every check once less than a sixth of its lifetime is left. Renewal (certbot's, or
//! ours by ACME) starts at a third left, so by then it has been failing for a while: a renewal
//! that stalls is noticed before clients see an expired certificate.
use std::{
    sync::Mutex,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use rustls::pki_types::CertificateDer;

use crate::telemetry::metrics;

/// How often the time left is checked besides at every new certificate.
pub const CHECK_EVERY: Duration = Duration::from_secs(3_600);

/// The validity of the certificate being served.
pub struct Expiry {
    /// `files` or `acme`: which mechanism should have renewed it.
    source: &'static str,
    current: Mutex<Option<Validity>>,
}

#[derive(Debug, Clone, Copy)]
struct Validity {
    not_before: i64,
    not_after: i64,
}

impl Expiry {
    pub fn new(source: &'static str) -> Self {
        Self {
            source,
            current: Mutex::new(None),
        }
    }

    /// `leaf` is now served: records its expiry and checks it.
    pub fn serving(&self, leaf: &CertificateDer<'_>) {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf) else {
            // rustls accepted it, so this does not happen; the gauge keeps the old value.
            tracing::warn!(source = self.source, "TLS certificate: validity unreadable");
            return;
        };
        let validity = Validity {
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
        };
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(validity);
        metrics::tls_certificate_expiry(self.source, validity.not_after);
        self.check();
    }

    /// Logs an error when less than a sixth of the lifetime is left.
    pub fn check(&self) {
        let Some(validity) = *self.current.lock().unwrap_or_else(|p| p.into_inner()) else {
            return;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        if validity.overdue(now) {
            tracing::error!(
                source = self.source,
                hours_left = validity.not_after.saturating_sub(now) / 3_600,
                "TLS certificate expires soon and has not been renewed: check the renewal"
            );
        }
    }
}

impl Validity {
    /// Less than a sixth of the lifetime left at `now`.
    fn overdue(self, now: i64) -> bool {
        let left = self.not_after.saturating_sub(now);
        let lifetime = self.not_after.saturating_sub(self.not_before);
        left.saturating_mul(6) < lifetime
    }
}

#[cfg(test)]
mod tests {
    use super::Validity;

    #[test]
    fn a_certificate_is_overdue_with_less_than_a_sixth_of_its_lifetime_left() {
        const DAY: i64 = 86_400;
        let ninety_days = Validity {
            not_before: 0,
            not_after: 90 * DAY,
        };
        assert!(!ninety_days.overdue(DAY));
        // Renewal is due at 30 days left: not yet an error.
        assert!(!ninety_days.overdue(60 * DAY));
        assert!(!ninety_days.overdue(75 * DAY));
        assert!(ninety_days.overdue(75 * DAY + 1));
        assert!(ninety_days.overdue(100 * DAY), "expired");
    }
}
