"""Token authentication for the API (its own module: settings name it, so it must not import DRF's views)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

if TYPE_CHECKING:  # a model: importing it here at run time would be before the app registry is ready
    from rest_framework.authtoken.models import Token


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's ``Authorization: Token <key>``, except that

    - a key PostgreSQL cannot even look up is a 401, not a 500;
    - the user's rider profile and its city come in the same query (``user.rider``; none for staff and
      partners), so driver endpoints do not ask for them again on every request.
    """

    def authenticate_credentials(self, key: str) -> Any:
        if "\x00" in key:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        model = cast("type[Token]", self.get_model())
        try:
            token = model.objects.select_related("user", "user__rider__city").get(key=key)
        except model.DoesNotExist:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return (token.user, token)
