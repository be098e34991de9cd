/**
 * Takes a state machine's definition out of a synthesized CloudFormation template and replaces its
 * tokens, so the very JSON CDK deploys can be run locally. Fails loudly on any intrinsic it does not
 * know rather than guessing.
 */
type Intrinsic = string | { [key: string]: unknown };

export interface TokenValues {
  /** `Fn::GetAtt: [logicalId, 'Arn']` and `Ref: logicalId` → this value. */
  readonly byLogicalId: Readonly<Record<string, string>>;
  /** `Ref: AWS::Partition` and the like. */
  readonly pseudo?: Readonly<Record<string, string>>;
}

export function resolveIntrinsic(value: Intrinsic, tokens: TokenValues): string {
  if (typeof value === 'string') {
    return value;
  }
  const [key, argument] = Object.entries(value)[0] ?? [];
  if (key === 'Fn::Join' && Array.isArray(argument)) {
    const [separator, parts] = argument as [string, Intrinsic[]];
    return parts.map((part) => resolveIntrinsic(part, tokens)).join(separator);
  }
  if (key === 'Fn::GetAtt' && Array.isArray(argument) && argument[1] === 'Arn') {
    return known(String(argument[0]), tokens);
  }
  if (key === 'Ref' && typeof argument === 'string') {
    const pseudo = tokens.pseudo?.[argument];
    return pseudo ?? known(argument, tokens);
  }
  throw new Error(`Cannot resolve the intrinsic ${JSON.stringify(value)} in a state machine definition`);
}

function known(logicalId: string, tokens: TokenValues): string {
  const value = tokens.byLogicalId[logicalId];
  if (value === undefined) {
    throw new Error(`The definition refers to ${logicalId}, which the test has no local stand-in for`);
  }
  return value;
}

interface TemplateJson {
  readonly Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
}

/**
 * Every Step Functions state machine of a template: logical id → its definition, tokens resolved.
 * Each definition is resolved when it is read, so a test leaves out the stand-ins of the state
 * machines it does not read (the tenant lifecycle's, in a test of the workflows'); reading one
 * whose tokens it has no stand-in for still fails, naming the logical id.
 */
export function synthesizedDefinitions(
  template: TemplateJson,
  tokens: TokenValues,
): Record<string, Record<string, unknown>> {
  const definitions: Record<string, Record<string, unknown>> = {};
  for (const [logicalId, resource] of Object.entries(template.Resources)) {
    if (resource.Type !== 'AWS::StepFunctions::StateMachine') {
      continue;
    }
    const definition = resource.Properties?.DefinitionString as Intrinsic | undefined;
    if (definition === undefined) {
      throw new Error(`State machine ${logicalId} has no DefinitionString`);
    }
    Object.defineProperty(definitions, logicalId, {
      enumerable: true,
      get: () => JSON.parse(resolveIntrinsic(definition, tokens)) as Record<string, unknown>,
    });
  }
  return definitions;
}
