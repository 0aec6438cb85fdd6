import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  dockerfileRuntimeStage,
  NODE_PATH_IN_IMAGE,
  recipeDifferences,
  WARDEN_IMAGE,
} from './image-recipe.js';

const dockerfile = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', 'Dockerfile'), 'utf8');

describe('the Docker-less image recipe', () => {
  it('matches the Dockerfile runtime stage: entrypoint, cmd, user, workdir, env, copied paths', () => {
    expect(recipeDifferences(dockerfileRuntimeStage(dockerfile))).toEqual([]);
  });

  it('runs the distroless Node path as the numeric nonroot user', () => {
    expect(WARDEN_IMAGE.config.entrypoint[0]).toBe(NODE_PATH_IN_IMAGE);
    expect(WARDEN_IMAGE.config.user).toBe('65532:65532');
  });

  it('parses the runtime stage, not the build stages', () => {
    const stage = dockerfileRuntimeStage(dockerfile);
    expect(stage.workdir).toBe('/app');
    expect(stage.copies.map((c) => c.stage)).toEqual(['deps', 'deps', 'build', 'deps']);
  });

  const mutate = (from: string, to: string) => {
    expect(dockerfile).toContain(from);
    return recipeDifferences(dockerfileRuntimeStage(dockerfile.replace(from, to)));
  };

  it('reports a changed USER', () => {
    expect(mutate('USER 65532:65532', 'USER 1000:1000')).toEqual(['USER 1000:1000 vs recipe 65532:65532']);
  });

  it('reports a changed ENTRYPOINT', () => {
    expect(mutate('"/app/dist/cli/warden.js"]', '"/app/dist/cli/other.js"]')[0]).toMatch(/^ENTRYPOINT /);
  });

  it('reports a new ENV the recipe lacks', () => {
    expect(mutate('ENV NODE_ENV=production', 'ENV NODE_ENV=production TZ=UTC')).toEqual([
      'ENV TZ=UTC vs recipe TZ=(unset)',
    ]);
  });

  it('reports a changed WORKDIR (and the copies it moves)', () => {
    const diffs = mutate('WORKDIR /app', 'WORKDIR /srv');
    expect(diffs).toContain('WORKDIR /srv vs recipe /app');
    expect(diffs.some((d) => d.startsWith('COPY '))).toBe(true);
  });

  it('reports an added COPY', () => {
    const diffs = mutate(
      'COPY --from=build /src/dist ./dist',
      'COPY --from=build /src/dist ./dist\nCOPY --from=build /src/docs ./docs',
    );
    expect(diffs).toHaveLength(1);
    expect(diffs[0]).toMatch(/^COPY .*docs -> \/app\/docs/);
  });

  it('reports a changed CMD', () => {
    expect(mutate('CMD ["--help"]', 'CMD ["controller"]')).toEqual([
      'CMD ["controller"] vs recipe ["--help"]',
    ]);
  });

  it('reports a runtime base other than distroless nodejs', () => {
    expect(mutate(['FROM $', '{RUNTIME_IMAGE}'].join(''), 'FROM debian:12')).toEqual([
      `runtime base debian:12: the recipe replicates distroless nodejs (${NODE_PATH_IN_IMAGE})`,
    ]);
  });
});
