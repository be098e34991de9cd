import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import type { StackOutputs } from './connection.js';

/**
 * Reads a stack's outputs with DescribeStacks, using the caller's AWS credentials and region
 * (`region`, else the SDK's own chain: AWS_REGION, the profile). `AWS_ENDPOINT_URL_CLOUDFORMATION`
 * points it elsewhere (the tests use moto_server).
 */
export function cloudFormationStackOutputs(
  clientFor: (region: string | undefined) => CloudFormationClient = (region) =>
    new CloudFormationClient(region === undefined ? {} : { region }),
): StackOutputs {
  return async function describeStackOutputs(stackName, region) {
    const client = clientFor(region);
    try {
      const { Stacks } = await client.send(new DescribeStacksCommand({ StackName: stackName }));
      const stack = Stacks?.[0];
      if (stack === undefined) {
        return undefined;
      }
      const outputs: Record<string, string> = {};
      for (const output of stack.Outputs ?? []) {
        if (output.OutputKey !== undefined && output.OutputValue !== undefined) {
          outputs[output.OutputKey] = output.OutputValue;
        }
      }
      return outputs;
    } catch (error) {
      // CloudFormation answers a ValidationError "Stack with id … does not exist" for a missing stack.
      if (
        error instanceof Error &&
        error.name === 'ValidationError' &&
        /does not exist/.test(error.message)
      ) {
        return undefined;
      }
      throw error;
    } finally {
      client.destroy();
    }
  };
}
