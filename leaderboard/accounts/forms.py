"""Input shapes for the account and team pages. Rules (name taken, password strength, ...) live in services."""

from __future__ import annotations

from django import forms


class TeamCreateForm(forms.Form):
    name = forms.CharField(label="Team name", max_length=100)


class TeamJoinForm(forms.Form):
    code = forms.CharField(label="Invite code", max_length=200)
