"""Routes and JSON shapes of the stock `evalai` CLI (1.3.18), mapped onto our models."""
