// iFlytek's official test vector (docs/providers/spark.md, "Signed URL"): the signature must
// match to the byte.
import { describe, expect, it } from 'vitest';
import { signSparkRequest } from './request.js';

describe('Spark URL signing', () => {
  it('reproduces the official test vector', () => {
    const { signature, authorization } = signSparkRequest({
      apiKey: 'addd2272b6d8b7c8abdd79531420ca3b',
      apiSecret: 'MjlmNzkzNmZkMDQ2OTc0ZDdmNGE2ZTZi',
      host: 'spark-api.xf-yun.com',
      path: '/v1.1/chat',
      date: 'Fri, 05 May 2023 10:43:39 GMT',
    });
    expect(signature).toBe('z5gHdu3pxVV4ADMyk467wOWDQ9q6BQzR3nfMTjc/DaQ=');
    expect(Buffer.from(authorization, 'base64').toString()).toBe(
      'api_key="addd2272b6d8b7c8abdd79531420ca3b", algorithm="hmac-sha256", headers="host date request-line", signature="z5gHdu3pxVV4ADMyk467wOWDQ9q6BQzR3nfMTjc/DaQ="',
    );
  });
});
