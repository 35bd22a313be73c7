"""A ListCodes page ends early rather than pass what a gRPC client receives by default."""

from cptrules import limits
from cptrules.server.page_tokens import PageTokens
from cptrules.server.servicer import CodeRulesServicer
from cptrules.v1 import code_rules_service_pb2 as pb

CLIENT_DEFAULT_RECEIVE = 4 * 1024 * 1024


def test_a_page_of_large_codes_stops_under_the_client_limit_and_continues_where_it_stopped(engine):
    tokens = PageTokens(b"k" * 32)
    servicer = CodeRulesServicer(engine, tokens)
    # From 24154 on, 1,000 surgical codes with their payment policies are nearly 6 MB.
    token = tokens.make("24154", "", engine.snapshot.ruleset.revision)
    raw = servicer._list_codes(pb.ListCodesRequest(page_size=1000, page_token=token))
    page = pb.ListCodesResponse.FromString(raw)
    assert len(raw) <= CLIENT_DEFAULT_RECEIVE and limits.PAGE_MAX_BYTES < CLIENT_DEFAULT_RECEIVE
    codes = [c.code for c in page.codes]
    assert 0 < len(codes) < 1000 and codes[0] > "24154"
    following = pb.ListCodesResponse.FromString(
        servicer._list_codes(pb.ListCodesRequest(page_size=5, page_token=page.next_page_token)))
    listing = engine.snapshot.codes
    start = listing.index(codes[0])
    assert codes + [c.code for c in following.codes] == list(listing[start:start + len(codes) + 5])
