"""What API tests share: a client that calls as a given user, with that user's token."""

from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


def client_of(user) -> APIClient:  # type: ignore[no-untyped-def]
    """An API client sending ``user``'s token (created if the user has none yet)."""
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client
