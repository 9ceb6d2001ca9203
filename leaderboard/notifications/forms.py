"""Input shapes for the notification pages."""

from __future__ import annotations

from django import forms


class PreferencesForm(forms.Form):
    submission_mails = forms.BooleanField(required=False, label="Mail me when one of my submissions is scored or fails")
    announcement_mails = forms.BooleanField(required=False,
                                            label="Mail me the announcements of the challenges I take part in")
