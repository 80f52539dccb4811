//! `grpc:` methods named for the server's reflection service (`reflection: true`), described by
//! the target once it is reachable and before any request (the warm-up's included), so that their
//! messages are then encoded as a `.proto`'s would be.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use prost_reflect::DescriptorPool;

use super::target::Target;
use crate::exit::RunError;
use crate::load::reflection::{ReflectionError, ReflectionLimits, describe_service};
use crate::scenario::{Call, GrpcMethod, Scenario, find_method};

/// Replaces every method of `scenario` still to be described by the one the target describes.
/// A method the server does not have is bad input (exit 2); a server that cannot describe it
/// (no reflection, no answer, a failure) leaves the run incomplete (exit 3).
pub(super) async fn methods(scenario: &mut Scenario, target: &Target) -> Result<(), RunError> {
    let url = &target.base;
    let endpoint = tonic::transport::Endpoint::from(url.clone());
    let mut pools: BTreeMap<String, DescriptorPool> = BTreeMap::new();
    for kind in &mut scenario.requests {
        let Call::Grpc(call) = &mut kind.call else {
            continue;
        };
        let GrpcMethod::Reflection(name) = &call.method else {
            continue;
        };
        let name = name.clone();
        let service = name
            .value
            .split_once('/')
            .map_or(name.value.as_str(), |(service, _)| service)
            .to_owned();
        let pool = match pools.entry(service.clone()) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let described = describe_service(
                    &endpoint,
                    target.tls.clone(),
                    &service,
                    ReflectionLimits::default(),
                )
                .await;
                match described {
                    Ok(pool) => entry.insert(pool),
                    Err(ReflectionError::UnknownService { known, .. }) => {
                        return Err(RunError::BadInput(
                            name.problem(format!(
                                "no service {service:?} on the server at {url}; its reflection \
                                 lists: {}",
                                known.join(", ")
                            ))
                            .to_string(),
                        ));
                    }
                    Err(error) => {
                        return Err(RunError::Incomplete(anyhow::Error::new(error).context(
                            format!(
                                "{url}: expected its gRPC server reflection to describe \
                                 {service} (for {}: {})",
                                name.at, name.key
                            ),
                        )));
                    }
                }
            }
        };
        let method = find_method(pool, &name.value, &format!("on the server at {url}"))
            .map_err(|problem| RunError::BadInput(name.problem(problem).to_string()))?;
        call.method = GrpcMethod::Resolved(method);
    }
    Ok(())
}
