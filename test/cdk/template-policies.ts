/** Reading IAM policies out of a synthesized template, for the tests that assert grants. */

export type Json = Record<string, unknown>;

export interface TemplateResource {
  readonly Type: string;
  readonly Properties: Json;
}

export function asArray<T>(value: T | T[]): T[] {
  return Array.isArray(value) ? value : [value];
}

export function actionsOf(statement: Json): string[] {
  return asArray(statement.Action as string | string[]);
}

export function resourcesOf(statement: Json): string[] {
  return asArray(statement.Resource as unknown).map(flatten);
}

/** `Fn::Join`, `Ref`, `Fn::GetAtt` and `Fn::ImportValue` as readable text: `arn:<AWS::Partition>:…`. */
export function flatten(value: unknown): string {
  if (typeof value === 'string') {
    return value;
  }
  const node = value as Json;
  if (Array.isArray(node['Fn::Join'])) {
    const [separator, parts] = node['Fn::Join'] as [string, unknown[]];
    return parts.map(flatten).join(separator);
  }
  if (Array.isArray(node['Fn::GetAtt'])) {
    const [id, attribute] = node['Fn::GetAtt'] as [string, string];
    return `<${id}.${attribute}>`;
  }
  if (typeof node.Ref === 'string') {
    return `<${node.Ref}>`;
  }
  if (node['Fn::ImportValue'] !== undefined) {
    return `<import:${flatten(node['Fn::ImportValue'])}>`;
  }
  throw new Error(`Cannot flatten ${JSON.stringify(value)}`);
}

/** Every statement of every policy of the role `roleLogicalId`: inline ones and attached `AWS::IAM::Policy`s. */
export function statementsOfRole(resources: Record<string, TemplateResource>, roleLogicalId: string): Json[] {
  const role = resources[roleLogicalId];
  const inline = (
    (role?.Properties.Policies as Array<{ PolicyDocument: { Statement: Json[] } }>) ?? []
  ).flatMap((policy) => policy.PolicyDocument.Statement);
  const attached = Object.values(resources)
    .filter(
      (resource) =>
        resource.Type === 'AWS::IAM::Policy' &&
        (resource.Properties.Roles as Json[]).some((ref) => (ref as { Ref?: string }).Ref === roleLogicalId),
    )
    .flatMap((policy) => (policy.Properties.PolicyDocument as { Statement: Json[] }).Statement);
  return [...inline, ...attached];
}
