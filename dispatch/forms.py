"""The dashboard's action forms: plain POST forms (CSRF), which the page's script may also send with fetch."""

from __future__ import annotations

from django import forms


class AssignForm(forms.Form):
    """Assign or reassign an order to a rider the dispatcher picked from the on-duty list."""

    rider_id = forms.IntegerField(min_value=1, label="Rider", error_messages={"required": "Pick a rider."})


class CancelForm(forms.Form):
    reason = forms.CharField(max_length=255, strip=True, error_messages={"required": "Say why the order is cancelled."})


def form_error_text(form: forms.Form) -> str:
    """A form's errors as one sentence for a message."""
    return " ".join(str(error) for errors in form.errors.values() for error in errors)
