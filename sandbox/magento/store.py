"""Routes: /V1/store/* (websites, store groups, store views, store configs). ACL Magento_Backend::store.

Like a real instance, the lists include the admin website/group/store with id 0; storeConfigs does not.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.magento.routing import RestRoutes, json_response, state_of

RESOURCE = "Magento_Backend::store"


def register(routes: RestRoutes) -> None:
    routes.add("GET", "/store/websites", websites, RESOURCE)
    routes.add("GET", "/store/storeGroups", store_groups, RESOURCE)
    routes.add("GET", "/store/storeViews", store_views, RESOURCE)
    routes.add("GET", "/store/storeConfigs", store_configs, RESOURCE)


async def websites(request: web.Request) -> web.Response:
    out: list[dict[str, Any]] = [{"id": 0, "code": "admin", "name": "Admin", "default_group_id": 0}]
    for w in state_of(request).websites.values():
        out.append({"id": w.id, "code": w.code, "name": w.name, "default_group_id": w.default_group_id})
    return json_response(out)


async def store_groups(request: web.Request) -> web.Response:
    out: list[dict[str, Any]] = [
        {"id": 0, "website_id": 0, "root_category_id": 0, "default_store_id": 0, "name": "Default", "code": "default"}
    ]
    for g in state_of(request).groups.values():
        out.append(
            {
                "id": g.id,
                "website_id": g.website_id,
                "root_category_id": g.root_category_id,
                "default_store_id": g.default_store_id,
                "name": g.name,
                "code": g.code,
            }
        )
    return json_response(out)


async def store_views(request: web.Request) -> web.Response:
    out: list[dict[str, Any]] = [
        {"id": 0, "code": "admin", "name": "Admin", "website_id": 0, "store_group_id": 0, "is_active": 1}
    ]
    for v in state_of(request).views.values():
        out.append(
            {
                "id": v.id,
                "code": v.code,
                "name": v.name,
                "website_id": v.website_id,
                "store_group_id": v.store_group_id,
                "is_active": int(v.is_active),
            }
        )
    return json_response(out)


async def store_configs(request: web.Request) -> web.Response:
    state = state_of(request)
    wanted = set(request.query.getall("storeCodes[]", [])) | set(request.query.getall("storeCodes", []))
    base = state.config.base_url.rstrip("/") + "/"
    secure = base.replace("http://", "https://", 1)
    out = []
    for v in state.views.values():
        if wanted and v.code not in wanted:
            continue
        out.append(
            {
                "id": v.id,
                "code": v.code,
                "website_id": v.website_id,
                "locale": v.locale,
                "base_currency_code": v.base_currency_code,
                "default_display_currency_code": v.base_currency_code,
                "timezone": v.timezone,
                "weight_unit": v.weight_unit,
                "base_url": base,
                "base_link_url": base,
                "base_static_url": f"{base}static/version1/",
                "base_media_url": f"{base}media/",
                "secure_base_url": secure,
                "secure_base_link_url": secure,
                "secure_base_static_url": f"{secure}static/version1/",
                "secure_base_media_url": f"{secure}media/",
            }
        )
    return json_response(out)
