"""Connects one Zoom user of the local stack's built-in simulator, so the fuzzer can reach the
routes of a real connection. Prints the connection id.

Usage: connect.py <base_url> <api_key> <simulator_url>
"""

import http.cookiejar
import json
import re
import sys
import urllib.error
import urllib.request


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def main() -> None:
    base, api_key, sim = sys.argv[1:4]
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPCookieProcessor(jar))

    def call(url, data=None, headers=None, method=None):
        request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
        try:
            with opener.open(request, timeout=30) as answer:
                return answer.status, answer.headers, answer.read().decode()
        except urllib.error.HTTPError as answer:
            return answer.code, answer.headers, answer.read().decode()

    status, _, body = call(
        f"{sim}/_sim/auto-approve",
        json.dumps({"on": True}).encode(),
        {"content-type": "application/json"},
    )
    assert status < 300, f"auto-approve: {status} {body}"
    status, _, body = call(
        f"{base}/connect/sessions",
        json.dumps({"auth_type": "platform_app"}).encode(),
        {"content-type": "application/json", "authorization": f"Bearer {api_key}"},
    )
    assert status == 201, f"session: {status} {body}"
    url = json.loads(body)["connect_url"]
    # connect -> Zoom's authorize -> the callback, following the redirects by hand.
    for _ in range(5):
        status, headers, body = call(url)
        if status not in (301, 302, 303, 307):
            break
        url = headers["location"]
    match = re.search(r'data-connection-id="([^"]+)"', body)
    assert status == 200 and match, f"callback: {status} {body[:500]}"
    print(match.group(1))


if __name__ == "__main__":
    main()
