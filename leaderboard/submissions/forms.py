"""Input shapes of the submit page and the method edit form. Whether a submission is accepted, or a change
allowed, is the services' call."""

from __future__ import annotations

from django import forms


class MethodForm(forms.Form):
    """The method fields, shown on the leaderboard: on the submit page and on the submission page's edit form."""

    method_name = forms.CharField(label="Method name", max_length=200, help_text="Shown on the leaderboard.")
    method_description = forms.CharField(label="Description", required=False,
                                         widget=forms.Textarea(attrs={"rows": 4}))
    method_url = forms.URLField(label="Method URL", required=False, max_length=200,
                                help_text="Paper or project page.", assume_scheme="https")
    code_url = forms.URLField(label="Code URL", required=False, max_length=200, assume_scheme="https")

    def first_error(self) -> str:
        """One sentence for the page's summary (and the JSON answer)."""
        for field, errors in self.errors.items():
            label = self.fields[field].label if field in self.fields else ""
            return f"{label}: {errors[0]}" if label else errors[0]
        return ""


class SubmissionForm(MethodForm):
    file = forms.FileField(
        label="Predictions (.zip)",
        help_text="A zip of split/video/expression folders holding RLE JSON or PNG masks.",
        widget=forms.ClearableFileInput(attrs={"accept": ".zip,application/zip"}),
    )
    is_public = forms.BooleanField(label="Show on the public leaderboard", required=False, initial=True)

    field_order = ["file", "method_name", "method_description", "method_url", "code_url", "is_public"]
