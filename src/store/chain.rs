//! The audit chain: tamper evidence for the event log.
//!
//! Every event gets one row in `audit_chain`, written **in the transaction that writes
//! the event** (see `change.rs`), so no event can be committed by credgate without its
//! link, and a row appended later by hand has none. A link holds digests of the event's
//! parts and a MAC:
//!
//! ```text
//! mac = HMAC-SHA256(k, "credgate-audit-chain-v1" ‖ previous mac ‖ position ‖
//!                      previous position ‖ sha256(envelope) ‖ sha256(payload) ‖ sha256(metadata))
//! ```
//!
//! `k` is derived from the master key, so whoever can write the database but lacks the
//! master key cannot forge a link. The digests let `verify` say *which* part of an
//! event changed; the previous position lets it say where an event was cut out.
//! `projections rebuild` never touches this table.
//!
//! What the chain cannot show on its own: the newest events deleted together with
//! their links. Against that, the head (position and MAC of the newest link) is logged
//! periodically and on shutdown, and `verify` takes a head recorded earlier.

use serde::Serialize;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{Store, StoreError};

/// The key the chain's MACs are made with (derived from the master key).
pub struct ChainKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainKey(<redacted>)")
    }
}

impl ChainKey {
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    fn mac(&self, parts: &LinkParts, previous_mac: &str) -> String {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, self.0.as_slice());
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&key);
        ctx.update(b"credgate-audit-chain-v1\0");
        ctx.update(previous_mac.as_bytes());
        ctx.update(b"\0");
        ctx.update(&parts.position.to_be_bytes());
        ctx.update(&parts.previous.to_be_bytes());
        ctx.update(parts.envelope.as_bytes());
        ctx.update(parts.payload.as_bytes());
        ctx.update(parts.metadata.as_bytes());
        hex(ctx.sign().as_ref())
    }
}

/// The newest link: what an outside system keeps to detect a cut-off tail later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[schema(examples(json!({"position": 42, "mac": "9f2c4e6a8b0d1f3e5a7c9e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f1a3c5e7b9d0f"})))]
pub struct ChainHead {
    /// The global position of the newest chained event.
    pub position: i64,
    /// Its MAC, hex.
    pub mac: String,
}

impl std::str::FromStr for ChainHead {
    type Err = String;

    /// `POSITION:MAC`, as the head is logged.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (position, mac) = text
            .split_once(':')
            .ok_or("expected POSITION:MAC, as the audit chain head is logged")?;
        // Exactly the document's pattern: 1–18 digits without a leading zero.
        let position = crate::decimal::parse_canonical(position)
            .filter(|p| *p > 0)
            .ok_or("the position must be a positive integer")?;
        if mac.len() != 64 || !mac.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("the MAC must be 64 hex digits".into());
        }
        Ok(Self {
            position,
            mac: mac.to_ascii_lowercase(),
        })
    }
}

impl std::fmt::Display for ChainHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.position, self.mac)
    }
}

/// What `verify` found wrong first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChainFault {
    /// The event's payload differs from what was written.
    PayloadAltered,
    /// The event's metadata (actor, request id, source, time) differs.
    MetadataAltered,
    /// The event's type, version, aggregate or sequence differs.
    EventAltered,
    /// The event at this position is gone.
    EventDeleted,
    /// An event without a link: written to the database outside credgate.
    EventNotChained,
    /// A link itself does not verify (forged, edited, or reordered).
    ChainAltered,
    /// The log ends before a head recorded earlier: its newest events were cut off.
    Truncated,
    /// The link at the recorded head's position has another MAC: history was rewritten.
    HeadMismatch,
}

/// The outcome of checking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(examples(json!({"ok": true, "checked": 42, "head": {"position": 42, "mac": "9f2c4e6a8b0d1f3e5a7c9e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f1a3c5e7b9d0f"}})))]
pub struct ChainReport {
    pub ok: bool,
    /// How many events were checked and found intact.
    pub checked: u64,
    /// The newest intact link (absent for an empty log).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<ChainHead>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad_position: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<ChainFault>,
}

/// The parts of one link a MAC covers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LinkParts {
    position: i64,
    previous: i64,
    envelope: String,
    payload: String,
    metadata: String,
}

/// An event's columns as stored, as text (the bytes the chain covers).
#[derive(Debug, Clone)]
pub(super) struct RawEvent {
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: String,
    pub metadata: String,
}

pub(super) type RawEventRow = (i64, String, String, i64, String, String, String, String);

impl From<RawEventRow> for RawEvent {
    fn from(row: RawEventRow) -> Self {
        let (
            position,
            aggregate_type,
            aggregate_id,
            sequence,
            event_type,
            event_version,
            payload,
            metadata,
        ) = row;
        Self {
            position,
            aggregate_type,
            aggregate_id,
            sequence,
            event_type,
            event_version,
            payload,
            metadata,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Length-prefixed fields, so no two different envelopes share bytes.
fn envelope_digest(event: &RawEvent) -> String {
    let mut hasher = Sha256::new();
    for field in [
        event.aggregate_type.as_bytes(),
        event.aggregate_id.as_bytes(),
        event.event_type.as_bytes(),
        event.event_version.as_bytes(),
    ] {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field);
    }
    hasher.update(event.sequence.to_be_bytes());
    hex(&hasher.finalize())
}

fn parts_of(event: &RawEvent, previous: i64) -> LinkParts {
    LinkParts {
        position: event.position,
        previous,
        envelope: envelope_digest(event),
        payload: sha256_hex(event.payload.as_bytes()),
        metadata: sha256_hex(event.metadata.as_bytes()),
    }
}

/// A stored link.
#[derive(Debug, Clone)]
struct Link {
    parts: LinkParts,
    mac: String,
}

type LinkRow = (i64, i64, String, String, String, String);

/// The newest link (`$n`-free, same SQL on both databases).
pub(super) const HEAD: &str =
    "SELECT position, mac FROM audit_chain ORDER BY position DESC LIMIT 1";

pub(super) const INSERT_LINK: &str = "INSERT INTO audit_chain \
     (position, previous, envelope_sha256, payload_sha256, metadata_sha256, mac) \
     VALUES ($1, $2, $3, $4, $5, $6)";

const LINKS_AFTER: &str = "SELECT position, previous, envelope_sha256, payload_sha256, \
     metadata_sha256, mac FROM audit_chain WHERE position > $1 ORDER BY position LIMIT $2";

pub(super) const RAW_EVENTS_AFTER: &str = "SELECT position, aggregate_type, aggregate_id, \
     sequence, event_type, event_version, CAST(payload AS TEXT), CAST(metadata AS TEXT) \
     FROM events WHERE position > $1 ORDER BY position LIMIT $2";

/// Builds the links of newly written events, in position order, after `head`.
pub(super) struct Linker<'k> {
    key: &'k ChainKey,
    head: Option<ChainHead>,
}

/// One link ready to insert: `(position, previous, envelope, payload, metadata, mac)`.
pub(super) type NewLink = LinkRow;

impl<'k> Linker<'k> {
    pub(super) fn after(key: &'k ChainKey, head: Option<(i64, String)>) -> Self {
        Self {
            key,
            head: head.map(|(position, mac)| ChainHead { position, mac }),
        }
    }

    pub(super) fn link(&mut self, event: &RawEvent) -> NewLink {
        let (previous, previous_mac) = self
            .head
            .as_ref()
            .map_or((0, String::new()), |h| (h.position, h.mac.clone()));
        let parts = parts_of(event, previous);
        let mac = self.key.mac(&parts, &previous_mac);
        self.head = Some(ChainHead {
            position: event.position,
            mac: mac.clone(),
        });
        (
            parts.position,
            parts.previous,
            parts.envelope,
            parts.payload,
            parts.metadata,
            mac,
        )
    }
}

/// How many events and links `verify` reads per query.
const VERIFY_BATCH: i64 = 1000;

/// Walks events and links in position order and finds the first fault.
struct Verifier<'k> {
    key: &'k ChainKey,
    checked: u64,
    head: Option<ChainHead>,
    expected: Option<ChainHead>,
    expected_seen: bool,
}

enum Step {
    Both(RawEvent, Link),
    EventOnly(RawEvent),
    LinkOnly(Link),
}

impl Verifier<'_> {
    fn check(&mut self, step: Step) -> Result<(), (i64, ChainFault)> {
        let (event, link) = match step {
            Step::EventOnly(event) => return Err((event.position, ChainFault::EventNotChained)),
            Step::LinkOnly(link) => (None, link),
            Step::Both(event, link) => (Some(event), link),
        };
        let (previous, previous_mac) = self
            .head
            .as_ref()
            .map_or((0, String::new()), |h| (h.position, h.mac.clone()));
        if link.parts.previous > previous {
            // The link says another event came before it: that one is gone with its link.
            return Err((link.parts.previous, ChainFault::EventDeleted));
        }
        if link.parts.previous < previous || self.key.mac(&link.parts, &previous_mac) != link.mac {
            return Err((link.parts.position, ChainFault::ChainAltered));
        }
        let Some(event) = event else {
            return Err((link.parts.position, ChainFault::EventDeleted));
        };
        let actual = parts_of(&event, previous);
        let fault = if actual.payload != link.parts.payload {
            Some(ChainFault::PayloadAltered)
        } else if actual.metadata != link.parts.metadata {
            Some(ChainFault::MetadataAltered)
        } else if actual.envelope != link.parts.envelope {
            Some(ChainFault::EventAltered)
        } else {
            None
        };
        if let Some(fault) = fault {
            return Err((event.position, fault));
        }
        if let Some(expected) = &self.expected
            && expected.position == link.parts.position
        {
            self.expected_seen = true;
            if expected.mac != link.mac {
                return Err((link.parts.position, ChainFault::HeadMismatch));
            }
        }
        self.checked += 1;
        self.head = Some(ChainHead {
            position: link.parts.position,
            mac: link.mac,
        });
        Ok(())
    }

    fn report(self, fault: Option<(i64, ChainFault)>) -> ChainReport {
        let fault = fault.or_else(|| {
            let expected = self.expected.as_ref()?;
            let newest = self.head.as_ref().map_or(0, |h| h.position);
            if expected.position > newest {
                Some((newest + 1, ChainFault::Truncated))
            } else if !self.expected_seen {
                // The recorded head names a position that holds no event now.
                Some((expected.position, ChainFault::HeadMismatch))
            } else {
                None
            }
        });
        ChainReport {
            ok: fault.is_none(),
            checked: self.checked,
            head: self.head,
            first_bad_position: fault.map(|(p, _)| p),
            reason: fault.map(|(_, r)| r),
        }
    }
}

impl Store {
    /// The newest link of the audit chain, if any event was written.
    pub async fn chain_head(&self) -> Result<Option<ChainHead>, StoreError> {
        let row: Option<(i64, String)> = on_pool!(self, |pool| sqlx::query_as(HEAD)
            .fetch_optional(pool)
            .await?);
        Ok(row.map(|(position, mac)| ChainHead { position, mac }))
    }

    /// Links events written before the chain existed (a store created by an older
    /// credgate), once: only while the chain is empty. Returns how many were linked.
    /// Events appended later without a link are never linked here: `verify` names them.
    pub async fn adopt_unchained_events(&self, key: &ChainKey) -> Result<u64, StoreError> {
        if self.chain_head().await?.is_some() {
            return Ok(0);
        }
        let mut change = super::Change::new();
        change.adopt_events = true;
        let adopted = self
            .commit_with_chain(&change, Some(key), &|_| Ok(()))
            .await;
        adopted.map_err(|e| match e {
            super::CommitError::Store(e) => e,
            other => StoreError::Fault(other.to_string()),
        })
    }

    /// Recomputes the chain from the event log. With `expected` (a head logged
    /// earlier), also detects a log cut off after it or rewritten up to it.
    pub async fn verify_chain(
        &self,
        key: &ChainKey,
        expected: Option<ChainHead>,
    ) -> Result<ChainReport, StoreError> {
        let mut verifier = Verifier {
            key,
            checked: 0,
            head: None,
            expected,
            expected_seen: false,
        };
        let mut cursor = 0i64;
        loop {
            let events: Vec<RawEvent> = on_pool!(self, |pool| sqlx::query_as::<_, RawEventRow>(
                RAW_EVENTS_AFTER
            )
            .bind(cursor)
            .bind(VERIFY_BATCH)
            .fetch_all(pool)
            .await?)
            .into_iter()
            .map(RawEvent::from)
            .collect();
            let links: Vec<Link> = on_pool!(self, |pool| sqlx::query_as::<_, LinkRow>(LINKS_AFTER)
                .bind(cursor)
                .bind(VERIFY_BATCH)
                .fetch_all(pool)
                .await?)
            .into_iter()
            .map(
                |(position, previous, envelope, payload, metadata, mac)| Link {
                    parts: LinkParts {
                        position,
                        previous,
                        envelope,
                        payload,
                        metadata,
                    },
                    mac,
                },
            )
            .collect();
            if events.is_empty() && links.is_empty() {
                return Ok(verifier.report(None));
            }
            // Only positions both batches fully cover can be paired up now.
            let full = |len: usize| len as i64 == VERIFY_BATCH;
            let bound = match (full(events.len()), full(links.len())) {
                (true, true) => events
                    .last()
                    .map(|e| e.position)
                    .min(links.last().map(|l| l.parts.position))
                    .unwrap_or(i64::MAX),
                (true, false) => events.last().map_or(i64::MAX, |e| e.position),
                (false, true) => links.last().map_or(i64::MAX, |l| l.parts.position),
                (false, false) => i64::MAX,
            };
            let mut events = events
                .into_iter()
                .filter(|e| e.position <= bound)
                .peekable();
            let mut links = links
                .into_iter()
                .filter(|l| l.parts.position <= bound)
                .peekable();
            loop {
                let step = match (events.peek(), links.peek()) {
                    (None, None) => break,
                    (Some(e), Some(l)) if e.position == l.parts.position => {
                        match (events.next(), links.next()) {
                            (Some(e), Some(l)) => Step::Both(e, l),
                            _ => break,
                        }
                    }
                    (Some(e), Some(l)) if e.position < l.parts.position => match events.next() {
                        Some(e) => Step::EventOnly(e),
                        None => break,
                    },
                    (Some(_), None) => match events.next() {
                        Some(e) => Step::EventOnly(e),
                        None => break,
                    },
                    _ => match links.next() {
                        Some(l) => Step::LinkOnly(l),
                        None => break,
                    },
                };
                let position = match &step {
                    Step::Both(e, _) | Step::EventOnly(e) => e.position,
                    Step::LinkOnly(l) => l.parts.position,
                };
                if let Err(fault) = verifier.check(step) {
                    return Ok(verifier.report(Some(fault)));
                }
                cursor = cursor.max(position);
            }
            if bound == i64::MAX {
                return Ok(verifier.report(None));
            }
            cursor = bound;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(position: i64, payload: &str) -> RawEvent {
        RawEvent {
            position,
            aggregate_type: "SshKeypair".into(),
            aggregate_id: "k1".into(),
            sequence: position,
            event_type: "KeypairRenamed".into(),
            event_version: "1".into(),
            payload: payload.into(),
            metadata: r#"{"actor_name":"ops"}"#.into(),
        }
    }

    fn chain(key: &ChainKey, events: &[RawEvent]) -> Vec<Link> {
        let mut linker = Linker::after(key, None);
        events
            .iter()
            .map(|e| {
                let (position, previous, envelope, payload, metadata, mac) = linker.link(e);
                Link {
                    parts: LinkParts {
                        position,
                        previous,
                        envelope,
                        payload,
                        metadata,
                    },
                    mac,
                }
            })
            .collect()
    }

    fn verify(key: &ChainKey, steps: Vec<Step>, expected: Option<ChainHead>) -> ChainReport {
        let mut verifier = Verifier {
            key,
            checked: 0,
            head: None,
            expected,
            expected_seen: false,
        };
        for step in steps {
            if let Err(fault) = verifier.check(step) {
                return verifier.report(Some(fault));
            }
        }
        verifier.report(None)
    }

    fn both(events: &[RawEvent], links: &[Link]) -> Vec<Step> {
        events
            .iter()
            .cloned()
            .zip(links.iter().cloned())
            .map(|(e, l)| Step::Both(e, l))
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies_and_each_kind_of_tampering_is_named() {
        let key = ChainKey::new([7; 32]);
        let events: Vec<RawEvent> = (1..=4)
            .map(|p| event(p, &format!("{{\"n\":{p}}}")))
            .collect();
        let links = chain(&key, &events);
        let report = verify(&key, both(&events, &links), None);
        assert!(report.ok, "{report:?}");
        assert_eq!(report.checked, 4);
        assert_eq!(report.head.as_ref().map(|h| h.position), Some(4));

        let mut altered = events.clone();
        altered[1].payload = "{\"n\":99}".into();
        let report = verify(&key, both(&altered, &links), None);
        assert_eq!(
            (report.first_bad_position, report.reason),
            (Some(2), Some(ChainFault::PayloadAltered))
        );
        assert_eq!(report.checked, 1);

        let mut altered = events.clone();
        altered[2].metadata = r#"{"actor_name":"mallory"}"#.into();
        let report = verify(&key, both(&altered, &links), None);
        assert_eq!(report.reason, Some(ChainFault::MetadataAltered));
        assert_eq!(report.first_bad_position, Some(3));

        let mut altered = events.clone();
        altered[0].aggregate_id = "k2".into();
        assert_eq!(
            verify(&key, both(&altered, &links), None).reason,
            Some(ChainFault::EventAltered)
        );

        // An event deleted, its link kept.
        let mut steps = both(&events, &links);
        steps[1] = Step::LinkOnly(links[1].clone());
        let report = verify(&key, steps, None);
        assert_eq!(
            (report.first_bad_position, report.reason),
            (Some(2), Some(ChainFault::EventDeleted))
        );

        // An event deleted with its link.
        let mut steps = both(&events, &links);
        steps.remove(1);
        let report = verify(&key, steps, None);
        assert_eq!(
            (report.first_bad_position, report.reason),
            (Some(2), Some(ChainFault::EventDeleted))
        );

        // An event inserted without a link.
        let mut steps = both(&events, &links);
        steps.insert(2, Step::EventOnly(event(3, "{}")));
        assert_eq!(
            verify(&key, steps, None).reason,
            Some(ChainFault::EventNotChained)
        );

        // A link forged without the key.
        let forger = ChainKey::new([8; 32]);
        let mut forged = events.clone();
        forged[3].payload = "{\"n\":42}".into();
        let mut forged_links = links.clone();
        let mut linker = Linker::after(&forger, Some((3, links[2].mac.clone())));
        let (_, _, _, payload, _, mac) = linker.link(&forged[3]);
        forged_links[3].parts.payload = payload;
        forged_links[3].mac = mac;
        let report = verify(&key, both(&forged, &forged_links), None);
        assert_eq!(
            (report.first_bad_position, report.reason),
            (Some(4), Some(ChainFault::ChainAltered))
        );
    }

    #[test]
    fn a_cut_off_tail_is_found_only_against_a_recorded_head() {
        let key = ChainKey::new([7; 32]);
        let events: Vec<RawEvent> = (1..=4).map(|p| event(p, "{}")).collect();
        let links = chain(&key, &events);
        let head = ChainHead {
            position: 4,
            mac: links[3].mac.clone(),
        };
        let cut = both(&events[..2], &links[..2]);
        assert!(verify(&key, both(&events[..2], &links[..2]), None).ok);
        let report = verify(&key, cut, Some(head.clone()));
        assert_eq!(
            (report.first_bad_position, report.reason),
            (Some(3), Some(ChainFault::Truncated))
        );
        assert!(verify(&key, both(&events, &links), Some(head.clone())).ok);

        let other = ChainHead {
            position: 4,
            mac: "0".repeat(64),
        };
        let report = verify(&key, both(&events, &links), Some(other));
        assert_eq!(report.reason, Some(ChainFault::HeadMismatch));
    }

    #[test]
    fn heads_parse_as_they_are_logged() {
        let head: ChainHead = format!("12:{}", "AB".repeat(32)).parse().unwrap();
        assert_eq!(head.position, 12);
        assert_eq!(head.mac, "ab".repeat(32));
        assert_eq!(head.to_string(), format!("12:{}", "ab".repeat(32)));
        assert!("12".parse::<ChainHead>().is_err());
        assert!("0:ab".parse::<ChainHead>().is_err());
        assert!(
            format!("x:{}", "a".repeat(64))
                .parse::<ChainHead>()
                .is_err()
        );
        assert!("3:abc".parse::<ChainHead>().is_err());
        // Position 0 is no event; and only the canonical spelling the document's pattern
        // allows (no sign, no leading zero, at most 18 digits) is read.
        let mac = "a".repeat(64);
        for position in ["0", "01", "+1", "-1", "1234567890123456789"] {
            assert!(
                format!("{position}:{mac}").parse::<ChainHead>().is_err(),
                "{position}"
            );
        }
        let longest: ChainHead = format!("123456789012345678:{mac}").parse().unwrap();
        assert_eq!(longest.position, 123_456_789_012_345_678);
    }
}
