// The redis driver's cluster and sentinel forms type-check; a misspelt key does not.
import { RedisSessionHandler } from '@ostro/session';

new RedisSessionHandler({ cluster: ['redis://10.0.0.1:7000'], username: 'app', password: 'pw', tls: { caFile: '/ca.pem' } }, { minReplicas: 1 });
new RedisSessionHandler({ sentinel: { masterName: 'sessions', nodes: ['redis://10.0.0.2:26379'], db: 1, tls: true } });
// @ts-expect-error masterName is required
new RedisSessionHandler({ sentinel: { nodes: ['redis://10.0.0.2:26379'] } });
// @ts-expect-error cluster takes URL strings
new RedisSessionHandler({ cluster: [{ host: 'a', port: 1 }] });
// @ts-expect-error minReplicas is a number
new RedisSessionHandler({ cluster: ['redis://10.0.0.1:7000'] }, { minReplicas: 'all' });
// @ts-expect-error sentinel nodes are URL strings
new RedisSessionHandler({ sentinel: { masterName: 'm', nodes: [26379] } });
