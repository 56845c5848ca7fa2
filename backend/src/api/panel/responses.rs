//! The response enum shape of the panel's management endpoints (alerts, billing, rule
//! settings): the endpoint's own statuses, then 401 (with App Bridge's retry header when a
//! fresh token may help), 403 (the role may not, or a cookie request without its CSRF token)
//! and 503.

/// `manage_response!(Name { variants… })` declares the enum and `From<PanelAuthError>`.
macro_rules! manage_response {
    ($name:ident { $($variants:tt)* }) => {
        #[derive(poem_openapi::ApiResponse)]
        pub enum $name {
            $($variants)*
            /// Not signed in, or the session token is invalid or expired (then
            /// `X-Shopify-Retry-Invalid-Session-Request: 1` asks App Bridge to retry once).
            #[oai(status = 401)]
            Unauthorized(
                poem_openapi::payload::Json<ghosttrack_wire::PanelError>,
                #[oai(header = "X-Shopify-Retry-Invalid-Session-Request")] Option<String>,
            ),
            /// The user's role may not do this, or the `X-CSRF-Token` of the session is missing.
            #[oai(status = 403)]
            Forbidden(poem_openapi::payload::Json<ghosttrack_wire::PanelError>),
            /// Storage is unavailable; retry shortly.
            #[oai(status = 503)]
            Unavailable(poem_openapi::payload::Json<ghosttrack_wire::PanelError>),
        }

        impl From<$crate::api::panel::auth::PanelAuthError> for $name {
            fn from(e: $crate::api::panel::auth::PanelAuthError) -> Self {
                use $crate::api::panel::auth::PanelAuthError;
                match e {
                    PanelAuthError::Unavailable => $name::Unavailable(e.body()),
                    PanelAuthError::CsrfRejected => $name::Forbidden(e.body()),
                    other => {
                        let retry = other.retry_header();
                        $name::Unauthorized(other.body(), retry)
                    }
                }
            }
        }

        #[allow(dead_code)]
        impl $name {
            fn forbidden(what: &str) -> Self {
                $name::Forbidden($crate::api::panel::responses::body("forbidden", &format!("your role may not {what}")))
            }

            fn unavailable() -> Self {
                $name::Unavailable($crate::api::panel::responses::body(
                    "unavailable",
                    "the database is unavailable; retry shortly",
                ))
            }
        }
    };
}

pub(crate) use manage_response;

pub fn body(code: &str, message: &str) -> poem_openapi::payload::Json<ghosttrack_wire::PanelError> {
    poem_openapi::payload::Json(ghosttrack_wire::PanelError { error: code.into(), message: message.into() })
}
