"""Integers over 64 bits in a request body are read exactly (json.loads), never as floats.

orjson, which reads the common body, turns such an integer into a float without an error: an
`Int` variable's refusal would quote 1.2345678901234568e+29 and an `ID` variable would become
that text. A body with a run of 19+ digits is read by json.loads instead (app/main.py
`_long_digits`)."""

BIG = "123456789012345678901234567890"


async def _post(tenant, body: bytes):
    return await tenant.gql.http.post("/graphql", content=body, headers={
        "content-type": "application/json", "authorization": f"Bearer {tenant.gql.token}"})


async def test_an_int_variable_over_64_bits_is_refused_with_its_own_digits(tenant):
    response = await _post(tenant, b'{"query":"query($n:Int){ campaigns(first:$n){ totalCount } }",'
                                   b'"variables":{"n":' + BIG.encode() + b'}}')
    body = response.json()
    [error] = body["errors"]
    assert BIG in error["message"], error["message"]
    assert "e+" not in error["message"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_string_variable_given_a_long_integer_is_refused_with_its_digits(tenant):
    response = await _post(tenant, b'{"query":"query($s:String){ campaigns(first:1, after:$s){ totalCount } }",'
                                   b'"variables":{"s":' + BIG.encode() + b'}}')
    [error] = response.json()["errors"]
    assert BIG in error["message"] and "e+" not in error["message"], error["message"]


async def test_long_digit_runs_inside_strings_answer_as_before(tenant):
    """A 19+ digit run in a string takes json.loads too: the same answer."""
    response = await _post(tenant, b'{"query":"{ viewer { role } }","operationName":null,'
                                   b'"extensions":{"note":"' + BIG.encode() + b'"}}')
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"viewer": {"role": "OWNER"}}}
