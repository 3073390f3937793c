from django.urls import path

from fleet.api import views

urlpatterns = [
    path("driver/locations/", views.LocationBatchApi.as_view(), name="driver-locations"),
    path("riders/nearby/", views.RidersNearbyApi.as_view(), name="riders-nearby"),
]
