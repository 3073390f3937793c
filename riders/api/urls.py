from django.urls import path

from riders.api import views

urlpatterns = [
    path("auth/signup/", views.SignupApi.as_view(), name="auth-signup"),
    path("auth/token/", views.TokenApi.as_view(), name="auth-token"),
    path("driver/profile/", views.ProfileApi.as_view(), name="driver-profile"),
    path("driver/kyc-documents/", views.KycDocumentListApi.as_view(), name="driver-kyc-documents"),
    path("driver/kyc-documents/<int:document_id>/", views.KycDocumentDetailApi.as_view(), name="driver-kyc-document"),
    path("driver/vehicle/", views.VehicleApi.as_view(), name="driver-vehicle"),
    path("driver/duty/", views.DutyApi.as_view(), name="driver-duty"),
    path("driver/hos/", views.HoursOfServiceApi.as_view(), name="driver-hos"),
    path("driver/emergency/", views.EmergencyApi.as_view(), name="driver-emergency"),
]
