//! OTLP export of the library's spans, off by default: on only when the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (a base URL, `/v1/traces` appended) or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as it is) is set, and the `otlp` feature is
//! built. Spans go out as HTTP/protobuf in batches; `OTEL_SERVICE_NAME` names the service
//! (default: the executable's name). Otherwise no exporter and no tracer provider are built,
//! and the library's spans stay no-ops (the records still carry `traceparent`).

/// The installed tracer provider, flushed and shut down when dropped.
#[derive(Debug, Default)]
pub struct Telemetry {
    #[cfg(feature = "otlp")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

/// Whether the environment asks for OTLP export.
pub fn otlp_requested() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

impl Telemetry {
    /// Installs the global tracer provider with the OTLP exporter when
    /// [`otlp_requested`]; call it before the runtime starts and before the clients are
    /// created (they take the global tracer when created). A failure to build the exporter
    /// is logged and leaves export off.
    pub fn init() -> Self {
        if !otlp_requested() {
            return Self::default();
        }
        #[cfg(feature = "otlp")]
        {
            match otlp_provider() {
                Ok(provider) => {
                    opentelemetry::global::set_tracer_provider(provider.clone());
                    tracing::info!("exporting spans over OTLP (HTTP/protobuf)");
                    Self {
                        provider: Some(provider),
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "cannot build the OTLP exporter; spans are not exported");
                    Self::default()
                }
            }
        }
        #[cfg(not(feature = "otlp"))]
        {
            tracing::warn!("OTEL_EXPORTER_OTLP_* is set but this build has no `otlp` feature");
            Self::default()
        }
    }

    /// Whether spans are being exported.
    pub fn exporting(&self) -> bool {
        #[cfg(feature = "otlp")]
        return self.provider.is_some();
        #[cfg(not(feature = "otlp"))]
        false
    }
}

#[cfg(feature = "otlp")]
fn otlp_provider() -> anyhow::Result<opentelemetry_sdk::trace::SdkTracerProvider> {
    use opentelemetry_otlp::{Protocol, WithExportConfig as _};

    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .build()?;
    let name = std::env::var("OTEL_SERVICE_NAME").ok().or_else(|| {
        std::env::current_exe()
            .ok()?
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
    });
    let mut resource = opentelemetry_sdk::Resource::builder();
    if let Some(name) = name {
        resource = resource.with_service_name(name);
    }
    Ok(opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        #[cfg(feature = "otlp")]
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "spans not all exported at shutdown");
        }
    }
}
