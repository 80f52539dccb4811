//! The gRPC listener's service: `TraceService/Export`, gzip accepted, requests up to the
//! configured size.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::codec::CompressionEncoding;

use super::store::{Store, export_response};

/// The `TraceService` that stores what it is sent, gzipped or not, up to `max_message_bytes` a
/// request.
pub(super) fn service(
    store: Arc<Store>,
    max_message_bytes: usize,
) -> TraceServiceServer<GrpcIngest> {
    TraceServiceServer::new(GrpcIngest(store))
        .max_decoding_message_size(max_message_bytes)
        .accept_compressed(CompressionEncoding::Gzip)
}

pub(super) struct GrpcIngest(Arc<Store>);

#[tonic::async_trait]
impl TraceService for GrpcIngest {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let tally = self.0.ingest(request.into_inner());
        Ok(tonic::Response::new(export_response(tally)))
    }
}
