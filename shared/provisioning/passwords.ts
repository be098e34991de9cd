import { createHash, createHmac, pbkdf2Sync, randomBytes, randomInt } from 'node:crypto';

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/**
 * A password of `length` random alphanumeric characters from the CSPRNG. Alphanumeric keeps it
 * safe in connection strings and shells; 32 characters of 62 symbols is about 190 bits.
 */
export function generatePassword(length = 32): string {
  let password = '';
  for (let i = 0; i < length; i += 1) {
    password += ALPHANUMERIC[randomInt(ALPHANUMERIC.length)];
  }
  return password;
}

/**
 * The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 7677, as PostgreSQL formats it).
 *
 * `CREATE ROLE ... PASSWORD '<verifier>'` then sets the password without the plaintext ever
 * reaching the server, so it cannot end up in PostgreSQL's statement log or `pg_stat_statements`.
 */
export function scramSha256Verifier(password: string, iterations = 4096): string {
  const salt = randomBytes(16);
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}
