//! What every module below the session API shares: who a session's peer
//! is, which transport carries it, the [`link::Link`] every live session
//! offers to the layers above the driver, and small sync helpers.

pub(crate) mod info;
pub(crate) mod link;
pub(crate) mod sync;
pub(crate) mod transport;
