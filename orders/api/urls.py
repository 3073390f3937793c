from django.urls import path

from orders.api import views

urlpatterns = [
    path("orders/", views.OrderListApi.as_view(), name="orders"),
    path("orders/<int:order_id>/", views.OrderDetailApi.as_view(), name="order"),
    path("orders/<int:order_id>/assign/", views.OrderAssignApi.as_view(), name="order-assign"),
    path("orders/<int:order_id>/cancel/", views.OrderCancelApi.as_view(), name="order-cancel"),
    path("orders/<int:order_id>/rating/", views.OrderRatingApi.as_view(), name="order-rating"),
    path("orders/<int:order_id>/track/", views.OrderTrackApi.as_view(), name="order-track"),
    path("driver/orders/", views.DriverOrderListApi.as_view(), name="driver-orders"),
    path("driver/orders/<int:order_id>/status/", views.DriverOrderStatusApi.as_view(), name="driver-order-status"),
    path("driver/orders/<int:order_id>/reject/", views.DriverOrderRejectApi.as_view(), name="driver-order-reject"),
]
