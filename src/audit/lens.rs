//! How a capability describes its events for the audit trail. Each capability supplies
//! one [`AuditLens`] per aggregate (see `Plugin::audit_lenses`); the audit plugin knows
//! no capability and turns whatever the lenses say into records. A lens names the
//! fields an event *sets*; the projection compares them with the values before, so
//! every record can show before → after without the lens knowing history.

use std::marker::PhantomData;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::store::{StoreError, StoredEvent, Upcasted};

/// What a record shows instead of a secret's value.
pub const SEALED: &str = "<sealed>";

/// What kind of thing happened.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// A credential or its settings changed (created, renamed, deleted, …).
    Change,
    /// A secret left the service: a private key export, a credentials bundle.
    SecretRead,
    /// A request or a connection was refused: revoked or expired key, missing scope,
    /// a host key that does not match the pinned ones.
    AccessDenied,
    /// A multi-step operation failed (e.g. a semi-automatic setup, with its phase).
    Failure,
    /// Anything else worth knowing (a connection test, a step of a setup).
    Activity,
}

/// One event, as the audit trail sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditFacts {
    pub category: Category,
    /// The audited fields this event sets, with their new values (secrets as
    /// [`SEALED`]). Names, hosts, ports, usernames, comments, fingerprints, …
    pub sets: Vec<(&'static str, Value)>,
    /// After this event the resource is gone (its last name is still shown).
    pub removes: bool,
    /// Facts of the event that are not fields of the resource (e.g. `cascade`).
    pub details: Map<String, Value>,
}

impl AuditFacts {
    pub fn new(category: Category) -> Self {
        Self {
            category,
            sets: Vec::new(),
            removes: false,
            details: Map::new(),
        }
    }

    pub fn change() -> Self {
        Self::new(Category::Change)
    }

    /// Sets `field` to `value` (anything serialisable; a failure shows as null).
    pub fn set(mut self, field: &'static str, value: impl serde::Serialize) -> Self {
        self.sets
            .push((field, serde_json::to_value(value).unwrap_or(Value::Null)));
        self
    }

    /// Sets `field` to [`SEALED`] when `present`: the record says a secret is there,
    /// never what it is.
    pub fn sealed(self, field: &'static str, present: bool) -> Self {
        if present {
            self.set(field, SEALED)
        } else {
            self
        }
    }

    pub fn detail(mut self, key: &str, value: impl serde::Serialize) -> Self {
        self.details.insert(
            key.to_owned(),
            serde_json::to_value(value).unwrap_or(Value::Null),
        );
        self
    }

    pub fn removes(mut self) -> Self {
        self.removes = true;
        self
    }
}

/// Describes the events of one aggregate type.
pub trait AuditLens: Send + Sync + 'static {
    /// The aggregate type as stored (`SshKeypair`).
    fn aggregate_type(&self) -> &'static str;
    /// The resource type as the audit API names it (`ssh_keypair`).
    fn resource_type(&self) -> &'static str;
    fn describe(&self, event: &StoredEvent) -> Result<AuditFacts, StoreError>;
}

/// A lens from a function over the aggregate's typed events (upcast first).
pub struct TypedLens<A: Upcasted + 'static> {
    resource_type: &'static str,
    describe: fn(&A::Event) -> AuditFacts,
    aggregate: PhantomData<fn() -> A>,
}

impl<A: Upcasted + 'static> TypedLens<A> {
    pub fn shared(
        resource_type: &'static str,
        describe: fn(&A::Event) -> AuditFacts,
    ) -> Arc<dyn AuditLens> {
        Arc::new(Self {
            resource_type,
            describe,
            aggregate: PhantomData,
        })
    }
}

impl<A: Upcasted + 'static> AuditLens for TypedLens<A> {
    fn aggregate_type(&self) -> &'static str {
        A::TYPE
    }

    fn resource_type(&self) -> &'static str {
        self.resource_type
    }

    fn describe(&self, event: &StoredEvent) -> Result<AuditFacts, StoreError> {
        Ok((self.describe)(&event.envelope::<A>()?.payload))
    }
}
