"""Message text: user-chosen strings are cut short so findings never echo long input."""
MAX_TEXT = 60


def short(text, limit=MAX_TEXT):
    text = str(text).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"
