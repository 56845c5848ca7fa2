//! `/api/panel/geography` and `/api/panel/pages[/map]`: the Geography page (visitors and threats
//! by country) and the Pages page (per-page click grids and scroll depths). Ranges are the
//! panel's (`24h`, `7d`, `30d`), so no query reads more than 30 days.

use std::sync::Arc;

use ghosttrack_wire::{
    ClickCell, CountryStats, Geography, PageActivity, PageActivityList, PageMap, PanelError as ApiError,
};
use poem::Request;
use poem::web::Data;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::auth::PanelAuthError;
use super::{DEFAULT_LIMIT, MAX_LIMIT, RangeParam, error_body, user};
use crate::domain::UnixMillis;
use crate::startup::AppState;
use crate::storage::panel_maps::{self as store, GRID_COLS, GRID_ROWS};

/// Longest page path accepted (the ingest truncates paths to this).
const MAX_PATH_CHARS: usize = 512;

panel_response!(GeographyResponse, Geography);
panel_response!(PagesResponse, PageActivityList);
panel_response!(PageMapResponse, PageMap);

pub struct PanelMapsApi;

#[OpenApi(prefix_path = "/panel", tag = "super::ApiTags::Panel")]
impl PanelMapsApi {
    /// Visitors, sessions and challenged or blocked sessions per country over a range ending now.
    #[oai(path = "/geography", method = "get", operation_id = "get_panel_geography")]
    async fn geography(
        &self,
        req: &Request,
        Data(state): Data<&Arc<AppState>>,
        /// `24h` (the default), `7d` or `30d`.
        range: Query<Option<RangeParam>>,
    ) -> GeographyResponse {
        let u = match user(state, req).await {
            Ok(u) => u,
            Err(e) => return e.into(),
        };
        let range_param = range.0.unwrap_or_default();
        let (window, _) = range_param.window(UnixMillis::now());
        match store::countries(&state.db, u.scope, window).await {
            Ok(rows) => GeographyResponse::Ok(Json(Geography {
                range: range_param.name().into(),
                from: window.from.0,
                to: window.to.0,
                countries: rows
                    .into_iter()
                    .map(|r| CountryStats {
                        country: r.country,
                        visitors: r.visitors,
                        sessions: r.sessions,
                        threats: r.threats,
                    })
                    .collect(),
            })),
            Err(e) => GeographyResponse::storage(e),
        }
    }

    /// Pages with clicks or scroll depths in the range, most clicked first.
    #[oai(path = "/pages", method = "get", operation_id = "list_panel_pages")]
    async fn pages(
        &self,
        req: &Request,
        Data(state): Data<&Arc<AppState>>,
        /// `24h` (the default), `7d` or `30d`.
        range: Query<Option<RangeParam>>,
        /// At most this many pages (default 100, at most 500).
        limit: Query<Option<u32>>,
    ) -> PagesResponse {
        let u = match user(state, req).await {
            Ok(u) => u,
            Err(e) => return e.into(),
        };
        let range_param = range.0.unwrap_or_default();
        let (window, _) = range_param.window(UnixMillis::now());
        let limit = u64::from(limit.0.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT));
        match store::pages(&state.db, u.scope, window, limit).await {
            Ok(rows) => PagesResponse::Ok(Json(PageActivityList {
                range: range_param.name().into(),
                pages: rows
                    .into_iter()
                    .map(|r| PageActivity { path: r.path, clicks: r.clicks, scroll_sessions: r.scroll_sessions })
                    .collect(),
            })),
            Err(e) => PagesResponse::storage(e),
        }
    }

    /// One page's click map (counts per grid cell over the page) and scroll-depth reach.
    #[oai(path = "/pages/map", method = "get", operation_id = "get_panel_page_map")]
    async fn page_map(
        &self,
        req: &Request,
        Data(state): Data<&Arc<AppState>>,
        /// The page's path as the tracker reported it, e.g. `/products/a`.
        path: Query<String>,
        /// `24h` (the default), `7d` or `30d`.
        range: Query<Option<RangeParam>>,
    ) -> PageMapResponse {
        let u = match user(state, req).await {
            Ok(u) => u,
            Err(e) => return e.into(),
        };
        let path = path.0;
        if !path.starts_with('/') || path.chars().count() > MAX_PATH_CHARS {
            return PageMapResponse::BadRequest(error_body(
                "invalid_path",
                "`path` must be a page path starting with / (at most 512 characters)",
            ));
        }
        let range_param = range.0.unwrap_or_default();
        let (window, _) = range_param.window(UnixMillis::now());
        match crate::panel::maps::page_map(&state.db, &state.event_keys, u.scope, window, &path).await {
            Ok(m) => PageMapResponse::Ok(Json(PageMap {
                path,
                range: range_param.name().into(),
                cols: GRID_COLS as i32,
                rows: GRID_ROWS as i32,
                page_width: m.page_width,
                page_height: m.page_height,
                clicks: m.clicks,
                cells: m
                    .cells
                    .into_iter()
                    .map(|((col, row), clicks)| ClickCell { col: col as i32, row: row as i32, clicks })
                    .collect(),
                scroll_sessions: m.scroll_sessions,
                reach: m.reach.to_vec(),
            })),
            Err(e) => PageMapResponse::storage(e),
        }
    }
}
