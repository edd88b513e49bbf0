"""QA scenarios: the file format, loading and checking, playing them on either transport."""
