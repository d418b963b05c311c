import pytest

# Landings are tracked for browsers only (bots and link previews get no cookie, no click).
BROWSER = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36"
)


@pytest.fixture
def client(client):
    """pytest-django's ``client``, with a browser's User-Agent."""
    client.defaults["HTTP_USER_AGENT"] = BROWSER
    return client
