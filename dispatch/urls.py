"""The dispatcher dashboard and the public tracking page (server-rendered; websockets carry the changes)."""

from django.urls import URLPattern, URLResolver, path

from dispatch import views

app_name = "dispatch"

urlpatterns: list[URLPattern | URLResolver] = [
    path("dispatch/", views.dashboard, name="dashboard"),
    path("dispatch/state/", views.state, name="state"),
    path("dispatch/orders/<int:order_id>/assign/", views.order_assign, name="order-assign"),
    path("dispatch/orders/<int:order_id>/cancel/", views.order_cancel, name="order-cancel"),
    path("dispatch/alerts/<int:alert_id>/acknowledge/", views.alert_acknowledge, name="alert-acknowledge"),
    path("track/<str:token>/", views.track, name="track"),
]
