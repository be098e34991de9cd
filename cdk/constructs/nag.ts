import { Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/**
 * Acknowledges cdk-nag's `AwsSolutions-IAM5` for one wildcard resource only (the finding id
 * `AwsSolutions-IAM5[Resource::<flattened ARN>]`), so a different wildcard added later to the same
 * policy is still reported. `resource` may hold tokens: it is flattened the way cdk-nag flattens it
 * (`Ref` → `<Name>`, `Fn::GetAtt` → `<Name.Attr>`, `Fn::Join` joined).
 *
 * @example
 * ```ts
 * acknowledgeWildcardResource(role, stack.formatArn({ ... resourceName: 'tenantflow/dev/tenants/*' }), 'One secret per tenant');
 * ```
 */
export function acknowledgeWildcardResource(target: IConstruct, resource: string, reason: string): void {
  const flattened = flattenReference(Stack.of(target).resolve(resource));
  Validations.of(target).acknowledge({ id: `AwsSolutions-IAM5[Resource::${flattened}]`, reason });
}

function flattenReference(node: unknown): string {
  if (typeof node === 'string') {
    return node.replace(/\$\{/g, '<').replace(/\}/g, '>');
  }
  if (typeof node === 'object' && node !== null) {
    const record = node as Record<string, unknown>;
    const join = record['Fn::Join'];
    if (Array.isArray(join)) {
      const [delimiter, parts] = join as [string, unknown[]];
      return parts.map(flattenReference).join(delimiter);
    }
    const getAtt = record['Fn::GetAtt'];
    if (Array.isArray(getAtt)) {
      return `<${flattenReference(getAtt[0])}.${flattenReference(getAtt[1])}>`;
    }
    if ('Fn::Sub' in record) {
      return flattenReference(record['Fn::Sub']);
    }
    if ('Fn::ImportValue' in record) {
      return flattenReference(record['Fn::ImportValue']);
    }
    if ('Ref' in record) {
      return `<${flattenReference(record.Ref)}>`;
    }
  }
  return JSON.stringify(node);
}
