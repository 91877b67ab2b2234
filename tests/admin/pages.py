"""Reading admin pages the way a person does."""

import html
import re


def text(response) -> str:
    """What a person reads on the page: tags stripped, entities decoded, spaces collapsed."""
    content = response.content.decode()
    content = re.sub(r"<(script|style)\b.*?</\1>", " ", content, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", content)).split())


def row(response, needle: str) -> str:
    """The HTML of the first table row that mentions `needle`."""
    for match in re.finditer(r"<tr\b.*?</tr>", response.content.decode(), flags=re.S):
        if needle in match.group(0):
            return match.group(0)
    raise AssertionError(f"no table row mentions {needle!r}")


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]
