"""Inputs that used to answer a plain HTTP 500: a bad nested argument next to a sibling DataLoader,
and a JSON body nested 1,000 deep (before auth)."""

from tests.helpers import launched_campaign


async def test_bad_nested_argument_next_to_a_sibling_loader_is_a_graphql_error(tenant):
    campaign, _ = await launched_campaign(tenant.gql, budget="10")
    d = await tenant.gql("mutation($i:SpendLogInput!){ spendLog(input:$i){ userErrors{ code message } } }",
                         {"i": {"campaignId": campaign["id"], "amount": "9.5", "category": "ads"}})
    assert not d["spendLog"]["userErrors"], d
    # The failing branch is cancelled by graphql-core; the branches next to it share its loaders.
    query = """query($id:ID!){
      a: campaign(id:$id){ insights{ code } budget{ alerts{ campaign{ insights{ code } sends(first:-1){ totalCount } } } } }
      b: campaign(id:$id){ insights{ code } metrics{ totals{ sent } } budget{ spent{ amount } alerts{ threshold } } }
      c: campaigns{ edges{ node{ insights{ code } budget{ alerts{ campaign{ insights{ code } } } } } } } }"""
    for _ in range(3):
        r = await tenant.gql.raw(query, {"id": campaign["id"]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
        assert body["data"]["b"]["insights"] is not None
        assert "between 0 and" in body["errors"][0]["message"]


async def test_deeply_nested_json_body_is_a_4xx_graphql_json(http):
    for depth in (1000, 100_000):
        for body in ("[" * depth + "]" * depth, '{"query":' + '{"a":' * depth + "1" + "}" * depth + "}"):
            r = await http.post("/graphql", content=body, headers={"content-type": "application/json"})
            assert 400 <= r.status_code < 500, (depth, r.status_code, r.text[:200])
            assert r.json()["errors"][0]["extensions"]["code"], r.text[:200]
    # the variables too, authenticated or not
    r = await http.post("/graphql", content='{"query":"{ __typename }","variables":{"v":' + "[" * 5000 + "]" * 5000 + "}}",
                        headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500, r.text[:200]
