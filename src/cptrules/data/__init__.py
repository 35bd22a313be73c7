"""Code data: the curated catalogue and imported CMS files, kept apart from the rules."""
