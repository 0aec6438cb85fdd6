import { describe, expect, it } from 'vitest';
import * as warden from '../../../broker/constants.js';
import * as pg from '../../../broker/pg/options.js';
import * as core from '../../../core/constants.js';
import * as sdk from './constants.js';

// The SDK ships without Warden's modules, so it repeats their names; they must not drift.
describe('SDK constants equal Warden’s', () => {
  it.each([
    ['ENV_MCP_BASE', sdk.ENV_MCP_BASE, core.ENV_MCP_BASE],
    ['ENV_HTTP_BASE', sdk.ENV_HTTP_BASE, core.ENV_HTTP_BASE],
    ['ENV_PG_BASE', sdk.ENV_PG_BASE, core.ENV_PG_BASE],
    ['ENV_USER_TOKEN_HEADER', sdk.ENV_USER_TOKEN_HEADER, core.ENV_USER_TOKEN_HEADER],
    ['HEADER_USER_TOKEN', sdk.HEADER_USER_TOKEN, core.HEADER_USER_TOKEN],
    ['HEADER_CONTEXT', sdk.HEADER_CONTEXT, core.HEADER_CONTEXT],
    ['HEADER_REQUEST_ID', sdk.HEADER_REQUEST_ID, core.HEADER_REQUEST_ID],
    ['PG_SETTING_USER_TOKEN', sdk.PG_SETTING_USER_TOKEN, pg.SETTING_USER_TOKEN],
    ['PG_SETTING_CONTEXT', sdk.PG_SETTING_CONTEXT, pg.SETTING_CONTEXT],
    ['JSONRPC_POLICY_DENIED', sdk.JSONRPC_POLICY_DENIED, warden.JSONRPC_POLICY_DENIED],
    ['JSONRPC_UPSTREAM_UNAVAILABLE', sdk.JSONRPC_UPSTREAM_UNAVAILABLE, warden.JSONRPC_UPSTREAM_UNAVAILABLE],
  ])('%s', (_name, mine, theirs) => {
    expect(mine).toBe(theirs);
  });
});
