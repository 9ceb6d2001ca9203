"""Input shapes for the account and team pages. Rules (name taken, password strength, ...) live in services."""

from __future__ import annotations

from allauth.account import forms as allauth_forms
from django import forms


class TeamCreateForm(forms.Form):
    name = forms.CharField(label="Team name", max_length=100)


class TeamJoinForm(forms.Form):
    code = forms.CharField(label="Invite code", max_length=200)


class LoginForm(allauth_forms.LoginForm):
    """allauth's login form, its field labelled with what it takes (ACCOUNT_FORMS["login"])."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fields["login"].label = "Username or e-mail"
        self.fields["login"].widget.attrs.update(autocomplete="username", autofocus=True)
