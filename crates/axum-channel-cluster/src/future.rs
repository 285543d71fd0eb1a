//! The future type the seam's traits return.

use std::future::Future;
use std::pin::Pin;

/// A boxed future that can move between threads (the same type as
/// `futures::future::BoxFuture`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
