//! sea-orm entities, one module per table. Behaviour lives in the domain modules, not here.
pub mod api_key;
pub mod audit_event;
pub mod authz_state;
pub mod comment;
pub mod identity;
pub mod invitation;
pub mod membership;
pub mod post;
pub mod refresh_token;
pub mod session;
pub mod tenant;
pub mod user;

pub use membership::Role;
pub use post::PostStatus;
