"""Root URLconf: admin, API, schema, health."""

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView


def health(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers; touches no database, cache or broker."""
    return JsonResponse({"status": "ok"})


admin.site.site_header = "FleetOps operations"
admin.site.site_title = "FleetOps"
admin.site.index_title = "Operations"

urlpatterns = [
    path("health/", health, name="health"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]
