import { describe, expect, it } from 'vitest';
import { csvCell, usageReportCsv, type UsageReport } from './usage-report.js';

const counts = { requests: 2, promptTokens: 10, completionTokens: 5, totalTokens: 15, estimatedRequests: 1, completed: 2, cancelled: 0, errors: 0, refused: 0 };

describe('csvCell: RFC 4180 quoting', () => {
  it('leaves plain text alone and quotes commas, quotes and line breaks, doubling inner quotes', () => {
    expect(csvCell('alice')).toBe('alice');
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('two\r\nlines')).toBe('"two\r\nlines"');
  });

  it('turns what a spreadsheet would run as a formula into text', () => {
    expect(csvCell('=HYPERLINK("http://evil","x")')).toBe('"\'=HYPERLINK(""http://evil"",""x"")"');
    expect(csvCell('+1+1')).toBe("'+1+1");
    expect(csvCell('-2+3')).toBe("'-2+3");
    expect(csvCell('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvCell('\tcmd')).toBe("'\tcmd");
  });
});

describe('usageReportCsv', () => {
  it('writes a header and one CRLF line per row: groups, currency, cost, counts', () => {
    const report: UsageReport = {
      from: '2026-12-01',
      to: '2026-12-01',
      groupBy: ['user', 'model'],
      data: [
        { ...counts, userId: '@bob', model: 'chat,fast', costMicros: 1_500, currency: 'USD', cost: '0.001500' },
        { ...counts, userId: 'carol', costMicros: 0, cost: '0.000000' },
      ],
    };
    expect(usageReportCsv(report)).toBe(
      'user_id,model,currency,cost,requests,prompt_tokens,completion_tokens,total_tokens,estimated_requests,completed,cancelled,errors,refused,cost_micros\r\n' +
        "'@bob,\"chat,fast\",USD,0.001500,2,10,5,15,1,2,0,0,0,1500\r\n" +
        'carol,,,0.000000,2,10,5,15,1,2,0,0,0,0\r\n',
    );
  });
});
