import { assertMatchesOpenApi, OPENAPI } from '../helpers/openapi';

/** The test helper that checks every gateway answer must itself catch what does not match. */
describe('the OpenAPI document and its response checker', () => {
  const ok = { accepted: 1, rejected: 0, results: [{ index: 0, status: 'accepted', id: 'e1' }] };
  const check = (status: number, body: unknown, path = '/v1/events', contentType = 'application/json') => () =>
    assertMatchesOpenApi({ method: 'POST', path, status, contentType, text: typeof body === 'string' ? body : JSON.stringify(body) });

  it('is OpenAPI 3.1 and documents the gateway routes', () => {
    expect(OPENAPI).toMatchObject({ openapi: '3.1.0' });
    expect(Object.keys(OPENAPI.paths)).toEqual(expect.arrayContaining(['/v1/events', '/v1/usage', '/v1/usage/period', '/openapi.json']));
  });

  it('accepts documented answers and refuses undocumented statuses, wrong media types and wrong bodies', () => {
    expect(check(202, ok)).not.toThrow();
    expect(check(201, ok)).toThrow(/status 201 is not documented/);
    expect(check(202, ok, '/v1/events', 'text/plain')).toThrow(/content-type text\/plain/);
    expect(check(202, { ...ok, accepted: '1' })).toThrow(/does not match/);
    expect(check(202, { ...ok, extra: true })).toThrow(/does not match/);
    expect(check(413, { message: 'too big' })).toThrow(/does not match/);
    expect(check(404, { error: 'no such resource' }, '/nowhere')).not.toThrow();
  });

  it('requires usage values as exact decimal strings', () => {
    const usage = (value: unknown) => () =>
      assertMatchesOpenApi({
        method: 'GET',
        path: '/v1/usage',
        status: 200,
        contentType: 'application/json',
        text: JSON.stringify({ tenant: 't', from: '2026-11-01T00:00:00.000Z', to: '2026-12-01T00:00:00.000Z', window: null, group_by: null, data: [{ customer: 'c', meter: 'm', window_start: '2026-11-01T00:00:00.000Z', window_end: '2026-11-01T01:00:00.000Z', value, events: 1, state: 'open' }] }),
      });
    expect(usage('1.000000001')).not.toThrow();
    expect(usage(1.5)).toThrow(/does not match/);
    expect(usage('1.0000000001')).toThrow(/does not match/);
  });
});
