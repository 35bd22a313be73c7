"""Facts → answer text, through one Jinja template per intent."""
