"""Input shapes for the account and team pages. Rules (name taken, password strength, ...) live in services."""

from __future__ import annotations

from django import forms
from django.contrib.auth.validators import UnicodeUsernameValidator


class SignupForm(forms.Form):
    username = forms.CharField(
        max_length=150, validators=[UnicodeUsernameValidator()],
        help_text="Letters, digits and @ . + - _ only.",
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password1 = forms.CharField(label="Password", strip=False,
                                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    password2 = forms.CharField(label="Password again", strip=False,
                                widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))

    def clean(self) -> dict:
        data = super().clean()
        if data.get("password1") and data.get("password2") and data["password1"] != data["password2"]:
            self.add_error("password2", "The two passwords differ.")
        return data


class TeamCreateForm(forms.Form):
    name = forms.CharField(label="Team name", max_length=100)


class TeamJoinForm(forms.Form):
    code = forms.CharField(label="Invite code", max_length=200)
