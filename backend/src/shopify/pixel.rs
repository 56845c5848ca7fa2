//! Web pixel activation and theme app-embed status over the Admin GraphQL API
//! (spec shopify-storefront §2.8 and §1.8).
//!
//! * [`Shopify::ensure_web_pixel`] creates the app's pixel, or updates it: one pixel per app and
//!   shop, so a create answering `TAKEN` becomes an update of the existing pixel, and an update
//!   answering "No web pixel was found" (or `NOT_FOUND`) becomes a create.
//! * [`Shopify::theme_embed_status`] reads `config/settings_data.json` of the MAIN theme and says
//!   whether the `ghosttrack-embed` app embed is on.

use serde::Deserialize;

use super::Shopify;
use super::admin::AdminError;
use super::shop_domain::ShopDomain;

/// Handle of the theme app embed block (`extensions/ghosttrack-theme/blocks/ghosttrack-embed.liquid`).
pub const EMBED_HANDLE: &str = "ghosttrack-embed";

const CREATE: &str = "mutation WebPixelCreate($settings: JSON!) { webPixelCreate(webPixel: { settings: $settings }) { userErrors { code field message } webPixel { id settings } } }";
const UPDATE: &str = "mutation WebPixelUpdate($id: ID!, $settings: JSON!) { webPixelUpdate(id: $id, webPixel: { settings: $settings }) { userErrors { code field message } webPixel { id settings } } }";
const QUERY: &str = "query WebPixel { webPixel { id settings } }";
const THEME: &str = r#"query MainThemeSettings { themes(first: 1, roles: [MAIN]) { nodes { id name files(filenames: ["config/settings_data.json"], first: 1) { nodes { filename body { ... on OnlineStoreThemeFileBodyText { content } } } } } } }"#;

/// The app's pixel on a shop.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct WebPixel {
    pub id: String,
    /// The settings as Shopify stores them (a JSON string or object).
    #[serde(default)]
    pub settings: serde_json::Value,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct UserError {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub field: Option<Vec<String>>,
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PixelPayload {
    #[serde(default)]
    user_errors: Vec<UserError>,
    #[serde(default)]
    web_pixel: Option<WebPixel>,
}

#[derive(Debug, thiserror::Error)]
pub enum PixelError {
    #[error(transparent)]
    Admin(#[from] AdminError),
    /// Shopify refused the pixel (e.g. `NO_EXTENSION` before `shopify app deploy`, `INVALID_SETTINGS`).
    #[error("webPixel refused: {}", describe(.0))]
    Refused(Vec<UserError>),
    #[error("unexpected response: {0}")]
    Shape(String),
}

/// The outcome of one call: what happened to the pixel.
#[derive(Debug, Clone, PartialEq)]
pub enum PixelOutcome {
    Created(WebPixel),
    Updated(WebPixel),
}

impl PixelOutcome {
    pub fn pixel(&self) -> &WebPixel {
        match self {
            PixelOutcome::Created(p) | PixelOutcome::Updated(p) => p,
        }
    }
}

fn describe(errors: &[UserError]) -> String {
    errors
        .iter()
        .map(|e| format!("{} ({})", e.code.as_deref().unwrap_or("?"), e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

fn is_not_found_message(msg: &str) -> bool {
    msg.contains("No web pixel was found")
}

fn not_found(errors: &[UserError]) -> bool {
    errors.iter().any(|e| e.code.as_deref() == Some("NOT_FOUND") || is_not_found_message(&e.message))
}

/// The pixel settings we send, as a JSON-encoded string (spec §2.8): exactly the fields
/// `extensions/ghosttrack-pixel/shopify.extension.toml` declares, `accountID` (the site key) and
/// `collectorUrl` (where the pixel posts its batches).
pub fn pixel_settings(account_id: &str, collector_url: &str) -> String {
    serde_json::json!({ "accountID": account_id, "collectorUrl": collector_url }).to_string()
}

enum Attempt {
    Done(WebPixel),
    Taken,
    NotFound,
}

impl Shopify {
    async fn pixel_mutation(
        &self,
        shop: &ShopDomain,
        query: &str,
        field: &str,
        variables: serde_json::Value,
    ) -> Result<Attempt, PixelError> {
        let data = match self.graphql(shop, query, variables).await {
            Ok(data) => data,
            Err(AdminError::GraphQl(msg)) if is_not_found_message(&msg) => return Ok(Attempt::NotFound),
            Err(e) => return Err(e.into()),
        };
        let payload: PixelPayload =
            serde_json::from_value(data[field].clone()).map_err(|e| PixelError::Shape(format!("{field}: {e}")))?;
        if payload.user_errors.iter().any(|e| e.code.as_deref() == Some("TAKEN")) {
            return Ok(Attempt::Taken);
        }
        if not_found(&payload.user_errors) {
            return Ok(Attempt::NotFound);
        }
        if !payload.user_errors.is_empty() {
            return Err(PixelError::Refused(payload.user_errors));
        }
        payload.web_pixel.map(Attempt::Done).ok_or_else(|| PixelError::Shape(format!("{field}: no webPixel")))
    }

    async fn create_pixel(&self, shop: &ShopDomain, settings: &str) -> Result<Attempt, PixelError> {
        self.pixel_mutation(shop, CREATE, "webPixelCreate", serde_json::json!({ "settings": settings })).await
    }

    async fn update_pixel(&self, shop: &ShopDomain, id: &str, settings: &str) -> Result<Attempt, PixelError> {
        self.pixel_mutation(shop, UPDATE, "webPixelUpdate", serde_json::json!({ "id": id, "settings": settings })).await
    }

    /// `query { webPixel { id settings } }`: `None` on a shop without our pixel (Shopify answers
    /// that with the error "No web pixel was found for this app.", which is not a failure).
    pub async fn web_pixel(&self, shop: &ShopDomain) -> Result<Option<WebPixel>, PixelError> {
        match self.graphql(shop, QUERY, serde_json::json!({})).await {
            Ok(data) if data["webPixel"].is_null() => Ok(None),
            Ok(data) => serde_json::from_value(data["webPixel"].clone())
                .map(Some)
                .map_err(|e| PixelError::Shape(format!("webPixel: {e}"))),
            Err(AdminError::GraphQl(msg)) if is_not_found_message(&msg) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates or updates the app's pixel with its settings (see [`pixel_settings`]). `known_id` is the id
    /// we stored last time, if any: update it first; otherwise create. Idempotent.
    pub async fn ensure_web_pixel(
        &self,
        shop: &ShopDomain,
        account_id: &str,
        collector_url: &str,
        known_id: Option<&str>,
    ) -> Result<PixelOutcome, PixelError> {
        let settings = pixel_settings(account_id, collector_url);
        if let Some(id) = known_id {
            match self.update_pixel(shop, id, &settings).await? {
                Attempt::Done(p) => return Ok(PixelOutcome::Updated(p)),
                // Deleted on Shopify's side (or never ours): create below.
                Attempt::NotFound | Attempt::Taken => {}
            }
        }
        match self.create_pixel(shop, &settings).await? {
            Attempt::Done(p) => Ok(PixelOutcome::Created(p)),
            Attempt::NotFound => Err(PixelError::Shape("webPixelCreate answered not found".into())),
            Attempt::Taken => {
                // The app already has a pixel here: find its id and update it.
                let existing = self
                    .web_pixel(shop)
                    .await?
                    .ok_or_else(|| PixelError::Shape("webPixelCreate said TAKEN but no webPixel exists".into()))?;
                match self.update_pixel(shop, &existing.id, &settings).await? {
                    Attempt::Done(p) => Ok(PixelOutcome::Updated(p)),
                    _ => Err(PixelError::Shape("webPixelUpdate of the existing pixel failed".into())),
                }
            }
        }
    }

    /// Whether the `ghosttrack-embed` app embed is on in the shop's MAIN theme.
    pub async fn theme_embed_status(&self, shop: &ShopDomain) -> Result<EmbedStatus, PixelError> {
        let data = self.graphql(shop, THEME, serde_json::json!({})).await?;
        let Some(theme) = data["themes"]["nodes"].as_array().and_then(|n| n.first()) else {
            return Ok(EmbedStatus::NoMainTheme);
        };
        let content = theme["files"]["nodes"]
            .as_array()
            .and_then(|n| n.iter().find(|f| f["filename"] == "config/settings_data.json"))
            .and_then(|f| f["body"]["content"].as_str());
        match content {
            None => Ok(EmbedStatus::Missing),
            Some(text) => embed_status(text, EMBED_HANDLE).map_err(PixelError::Shape),
        }
    }
}

/// The app embed in the MAIN theme's `settings_data.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmbedStatus {
    /// The block is present and not disabled.
    Enabled,
    /// The block is present with `"disabled": true` (the merchant turned it off).
    Disabled,
    /// No such block: never enabled on this theme.
    Missing,
    /// The shop has no published theme.
    NoMainTheme,
}

impl EmbedStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EmbedStatus::Enabled => "enabled",
            EmbedStatus::Disabled => "disabled",
            EmbedStatus::Missing => "missing",
            EmbedStatus::NoMainTheme => "no_main_theme",
        }
    }
}

/// Removes `/* … */` and `//` comments outside strings (theme JSON allows comments; real
/// `settings_data.json` files begin with a `/* … */` header).
pub fn strip_json_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match (c, chars.peek().copied()) {
            ('"', _) => {
                in_string = true;
                out.push(c);
            }
            ('/', Some('*')) => {
                chars.next();
                let mut prev = '\0';
                for n in chars.by_ref() {
                    if prev == '*' && n == '/' {
                        break;
                    }
                    prev = n;
                }
                out.push(' ');
            }
            ('/', Some('/')) => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// Reads `current.blocks` of a `settings_data.json` and finds a block whose `type` is
/// `shopify://apps/<app>/blocks/<handle>/<uuid>`. Enabled ⇔ present and `disabled` ≠ true.
/// `current` may also be a preset name (a string), in which case no app embed is on.
pub fn embed_status(settings_data: &str, handle: &str) -> Result<EmbedStatus, String> {
    let value: serde_json::Value = serde_json::from_str(&strip_json_comments(settings_data))
        .map_err(|e| format!("settings_data.json is not JSON: {e}"))?;
    let Some(blocks) = value["current"]["blocks"].as_object() else {
        return Ok(EmbedStatus::Missing);
    };
    let mut status = EmbedStatus::Missing;
    for block in blocks.values() {
        let Some(kind) = block["type"].as_str() else { continue };
        if !is_our_block(kind, handle) {
            continue;
        }
        if block["disabled"].as_bool() == Some(true) {
            status = EmbedStatus::Disabled;
        } else {
            return Ok(EmbedStatus::Enabled);
        }
    }
    Ok(status)
}

fn is_our_block(kind: &str, handle: &str) -> bool {
    let Some(rest) = kind.strip_prefix("shopify://apps/") else { return false };
    let parts: Vec<&str> = rest.split('/').collect();
    matches!(parts.as_slice(), [app, "blocks", h, uuid] if !app.is_empty() && *h == handle && !uuid.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const WITH_HEADER: &str = r#"/*
 * ------------------------------------------------------------
 * IMPORTANT: The contents of this file are auto-generated. // not a line comment
 * ------------------------------------------------------------
 */
{
  "current": {
    "logo_url": "https://cdn.example/a//b.png",
    "blocks": {
      "17878678986028907411": {
        "type": "shopify:\/\/apps\/faceforms-better-pop-ups\/blocks\/app-embed\/f2173231-e611-461d-884b-bd8e6cc2ded4",
        "disabled": false,
        "settings": {}
      },
      "4242": {
        "type": "shopify:\/\/apps\/ghosttrack\/blocks\/ghosttrack-embed\/0b9f3c1e-1111-4222-8333-944455556666",
        "disabled": DISABLED,
        "settings": {}
      }
    }
  }
}"#;

    #[test]
    fn the_embed_is_found_behind_the_comment_header() {
        assert_eq!(embed_status(&WITH_HEADER.replace("DISABLED", "false"), EMBED_HANDLE), Ok(EmbedStatus::Enabled));
        assert_eq!(embed_status(&WITH_HEADER.replace("DISABLED", "true"), EMBED_HANDLE), Ok(EmbedStatus::Disabled));
        // Without the flag at all: enabled.
        let no_flag = WITH_HEADER.replace(r#""disabled": DISABLED,"#, "");
        assert_eq!(embed_status(&no_flag, EMBED_HANDLE), Ok(EmbedStatus::Enabled));
        // Comments are stripped, strings (with `//` in them) are not.
        let stripped = strip_json_comments(&WITH_HEADER.replace("DISABLED", "false"));
        assert!(stripped.contains("https://cdn.example/a//b.png"));
        assert!(!stripped.contains("IMPORTANT"));
    }

    #[test]
    fn other_apps_blocks_and_presets_are_not_our_embed() {
        let other_only =
            r#"{"current":{"blocks":{"1":{"type":"shopify://apps/x/blocks/app-embed/u","disabled":false}}}}"#;
        assert_eq!(embed_status(other_only, EMBED_HANDLE), Ok(EmbedStatus::Missing));
        let lookalike = r#"{"current":{"blocks":{"1":{"type":"shopify://apps/x/blocks/ghosttrack-embed-old/u","disabled":false}}}}"#;
        assert_eq!(embed_status(lookalike, EMBED_HANDLE), Ok(EmbedStatus::Missing));
        assert_eq!(embed_status(r#"{"current":"Default","presets":{}}"#, EMBED_HANDLE), Ok(EmbedStatus::Missing));
        assert!(embed_status("/* only a comment */", EMBED_HANDLE).is_err());
    }

    #[test]
    fn pixel_settings_are_a_json_encoded_string() {
        assert_eq!(
            pixel_settings("gt_abc\"1", "https://gt.example/collect"),
            r#"{"accountID":"gt_abc\"1","collectorUrl":"https://gt.example/collect"}"#
        );
    }
}
