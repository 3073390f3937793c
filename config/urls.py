"""Root URLconf: admin, API, schema, health."""

from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from access.views import staff_login
from config import health, metrics
from config.api.errors import json_not_found

admin.site.site_header = "FleetOps operations"
admin.site.site_title = "FleetOps"
admin.site.index_title = "Operations"

handler404 = "config.api.errors.json_not_found"
handler500 = "config.api.errors.json_server_error"

urlpatterns = [
    path("health/", health.health, name="health"),
    path("health/ready/", health.ready, name="health-ready"),
    path("metrics", metrics.metrics_view, name="metrics"),
    # The admin's own login, throttled (the dashboard's login too: LOGIN_URL is this page).
    path("admin/login/", staff_login, name="staff-login"),
    path("admin/", admin.site.urls),
    path("", include("dispatch.urls")),
    path("api/v1/", include("riders.api.urls")),
    path("api/v1/", include("fleet.api.urls")),
    path("api/v1/", include("orders.api.urls")),
    path("api/v1/", include("wallet.api.urls")),
    path("api/v1/", include("analytics.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    # Any other /api/ path answers in the error shape, with DEBUG on too (handler404 covers only DEBUG off).
    # CSRF-exempt like every API view: a POST to a path no view matches (``orders/abc/cancel/``) is a JSON 404,
    # not Django's HTML CSRF page.
    re_path(r"^api/", csrf_exempt(json_not_found)),
]
