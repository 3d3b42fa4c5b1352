import http.client, json, time
import pytest
from tests.webhook.test_server import served, Served
__all__=["served"]
def test_x(served: Served):
    for i in range(5):
        c = http.client.HTTPSConnection("127.0.0.1", served.port, context=served.contexts["apiserver"], timeout=10)
        c.putrequest("POST", "/authenticate")
        c.putheader("Content-Type", "application/json")
        c.putheader("Content-Length", str(1024*1024))
        c.putheader("Expect", "100-continue")
        c.endheaders()
        r = c.getresponse()
        print(r.status, r.read())
        c.close()
