import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { currentStage, followedStage, requestedStage } from './source.ts';

describe('followedStage: which version an object follows now', () => {
  it('follows AWSCURRENT when nothing is named, for Secrets Manager and SSM alike', () => {
    assert.equal(followedStage({ objectType: 'secretsmanager' }), currentStage);
    assert.equal(followedStage({ objectType: 'ssmparameter' }), currentStage);
  });

  it('follows the stage or label asked for', () => {
    assert.equal(followedStage({ objectType: 'secretsmanager', versionStage: 'AWSPENDING' }), 'AWSPENDING');
    assert.equal(followedStage({ objectType: 'ssmparameter', versionStage: 'blue' }), 'blue');
  });

  it('follows nothing when a version id pins it, even with a stage beside it', () => {
    assert.equal(followedStage({ objectType: 'secretsmanager', versionId: 'v1' }), undefined);
    assert.equal(
      followedStage({ objectType: 'secretsmanager', versionId: 'v1', versionStage: 'AWSCURRENT' }),
      undefined,
    );
    assert.equal(followedStage({ objectType: 'ssmparameter', versionId: '3' }), undefined);
  });
});

describe('requestedStage: the stage sent to AWS', () => {
  it('names AWSCURRENT for an unpinned Secrets Manager read and nothing for a pinned one', () => {
    assert.equal(requestedStage({ objectType: 'secretsmanager' }), currentStage);
    assert.equal(requestedStage({ objectType: 'secretsmanager', versionId: 'v1' }), undefined);
  });

  it('keeps a stage given beside a version id (it guards the read)', () => {
    assert.equal(
      requestedStage({ objectType: 'secretsmanager', versionId: 'v1', versionStage: 'AWSPREVIOUS' }),
      'AWSPREVIOUS',
    );
  });

  it('sends SSM only the label asked for: none reads the newest version', () => {
    assert.equal(requestedStage({ objectType: 'ssmparameter' }), undefined);
    assert.equal(requestedStage({ objectType: 'ssmparameter', versionStage: 'blue' }), 'blue');
  });
});
